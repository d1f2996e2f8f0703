/**
 * Reads a GGUF file's header, metadata and tensor table (never the tensor
 * data). Every read is bounded: a hostile or corrupt file cannot make the
 * agent allocate without limit or loop forever, and a truncated or foreign
 * file fails with an error that says which.
 */
import { open, type FileHandle } from "node:fs/promises";
import { FILE_TYPE_NAMES, GGML_TYPE_NAMES, GGUF_MAGIC, GgufValueType, SCALAR_SIZE } from "./format.ts";
import { errorMessage } from "../shared/error-text.ts";

export type GgufScalar = number | bigint | boolean | string;
export interface GgufArray {
  kind: "array";
  itemType: number;
  length: number;
  /** The items, or null when the array is longer than `maxArrayItems` (only its length is kept). */
  items: GgufScalar[] | null;
}
export type GgufValue = GgufScalar | GgufArray;

export interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: number;
  offset: bigint;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
}

export interface GgufSummary {
  architecture: string | null;
  name: string | null;
  parameterCount: number | null;
  quantization: string | null;
  contextLength: number | null;
}

export interface ReadGgufOptions {
  /** Arrays longer than this keep only their length (tokenizer vocabularies run to 250k entries). */
  maxArrayItems?: number;
  /** Bytes of header + metadata + tensor table read at most. */
  maxHeaderBytes?: number;
}

export class GgufError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GgufError";
  }
}

const MAX_STRING_BYTES = 1 << 20;
const MAX_KV_COUNT = 1_000_000;
const MAX_TENSOR_COUNT = 1_000_000;
const MAX_DIMS = 8;
const CHUNK = 1 << 16;

/** A forward-only reader over a file handle that reads in chunks on demand. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0; // file offset of buf[0]
  pos = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly fileSize: number,
    private readonly limit: number,
    private readonly path: string,
  ) {}

  private async ensure(n: number, what: string): Promise<void> {
    const end = this.pos + n;
    if (end > this.fileSize) throw new GgufError(`${this.path}: truncated GGUF file (ends at byte ${this.fileSize} while reading ${what} at byte ${this.pos})`);
    if (end > this.limit) throw new GgufError(`${this.path}: GGUF metadata is larger than the ${this.limit}-byte limit (reading ${what})`);
    if (end <= this.bufStart + this.buf.length) return;
    const want = Math.min(Math.max(n, CHUNK), this.fileSize - this.pos);
    const next = Buffer.alloc(want);
    const { bytesRead } = await this.fh.read(next, 0, want, this.pos);
    if (bytesRead < n) throw new GgufError(`${this.path}: truncated GGUF file (short read of ${what} at byte ${this.pos})`);
    this.buf = next.subarray(0, bytesRead);
    this.bufStart = this.pos;
  }

  private async take(n: number, what: string): Promise<Buffer> {
    await this.ensure(n, what);
    const at = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }

  async u32(what: string): Promise<number> {
    return (await this.take(4, what)).readUInt32LE(0);
  }
  async u64(what: string): Promise<bigint> {
    return (await this.take(8, what)).readBigUInt64LE(0);
  }
  async u64Count(what: string, max: number): Promise<number> {
    const v = await this.u64(what);
    if (v > BigInt(max)) throw new GgufError(`${this.path}: ${what} is ${v}, more than the limit of ${max} (corrupt file?)`);
    return Number(v);
  }
  async string(what: string): Promise<string> {
    const len = await this.u64Count(`${what} length`, MAX_STRING_BYTES);
    return (await this.take(len, what)).toString("utf8");
  }
  async scalar(type: number, what: string): Promise<GgufScalar> {
    if (type === GgufValueType.STRING) return this.string(what);
    const size = SCALAR_SIZE[type];
    if (size === undefined) throw new GgufError(`${this.path}: unknown GGUF value type ${type} for ${what}`);
    const b = await this.take(size, what);
    switch (type) {
      case GgufValueType.UINT8: return b.readUInt8(0);
      case GgufValueType.INT8: return b.readInt8(0);
      case GgufValueType.UINT16: return b.readUInt16LE(0);
      case GgufValueType.INT16: return b.readInt16LE(0);
      case GgufValueType.UINT32: return b.readUInt32LE(0);
      case GgufValueType.INT32: return b.readInt32LE(0);
      case GgufValueType.FLOAT32: return b.readFloatLE(0);
      case GgufValueType.BOOL: return b.readUInt8(0) !== 0;
      case GgufValueType.UINT64: return narrow(b.readBigUInt64LE(0));
      case GgufValueType.INT64: return narrow(b.readBigInt64LE(0));
      case GgufValueType.FLOAT64: return b.readDoubleLE(0);
      default: throw new GgufError(`${this.path}: unknown GGUF value type ${type} for ${what}`);
    }
  }
  /** Skips fixed-size items without decoding them one by one. */
  async skip(n: number, what: string): Promise<void> {
    await this.ensure(0, what);
    if (this.pos + n > this.fileSize) throw new GgufError(`${this.path}: truncated GGUF file (array ${what} runs past the end)`);
    if (this.pos + n > this.limit) throw new GgufError(`${this.path}: GGUF metadata is larger than the ${this.limit}-byte limit (reading ${what})`);
    this.pos += n;
  }
}

/** 64-bit integers become numbers when exact, bigints otherwise. */
function narrow(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

export async function readGguf(path: string, options: ReadGgufOptions = {}): Promise<GgufFile> {
  const maxArrayItems = options.maxArrayItems ?? 4096;
  const maxHeaderBytes = options.maxHeaderBytes ?? 256 * 1024 * 1024;
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (cause) {
    throw new GgufError(`${path}: cannot open (${errorMessage(cause)})`, { cause });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new GgufError(`${path}: not a regular file`);
    const c = new Cursor(fh, st.size, maxHeaderBytes, path);
    if (st.size < 4) throw new GgufError(`${path}: not a GGUF file (only ${st.size} bytes)`);
    const magic = await c.u32("magic");
    if (magic !== GGUF_MAGIC) throw new GgufError(`${path}: not a GGUF file (magic bytes are not "GGUF")`);
    const version = await c.u32("version");
    if (version !== 2 && version !== 3) throw new GgufError(`${path}: unsupported GGUF version ${version} (this reader handles 2 and 3)`);
    const tensorCount = await c.u64Count("tensor count", MAX_TENSOR_COUNT);
    const kvCount = await c.u64Count("metadata count", MAX_KV_COUNT);

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = await c.string(`metadata key #${i}`);
      const type = await c.u32(`type of ${key}`);
      if (type === GgufValueType.ARRAY) {
        const itemType = await c.u32(`item type of ${key}`);
        if (itemType === GgufValueType.ARRAY) throw new GgufError(`${path}: nested arrays in ${key} are not supported`);
        const length = await c.u64Count(`length of ${key}`, 100_000_000);
        const keep = length <= maxArrayItems;
        const items: GgufScalar[] | null = keep ? [] : null;
        const size = SCALAR_SIZE[itemType];
        if (!keep && size !== undefined) {
          await c.skip(size * length, key);
        } else {
          for (let j = 0; j < length; j++) {
            const v = await c.scalar(itemType, `${key}[${j}]`);
            items?.push(v);
          }
        }
        metadata.set(key, { kind: "array", itemType, length, items });
      } else {
        metadata.set(key, await c.scalar(type, key));
      }
    }

    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = await c.string(`tensor #${i} name`);
      const nDims = await c.u32(`dimensions of ${name}`);
      if (nDims > MAX_DIMS) throw new GgufError(`${path}: tensor ${name} has ${nDims} dimensions (corrupt file?)`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(Number(await c.u64(`dimension ${d} of ${name}`)));
      const type = await c.u32(`type of ${name}`);
      const offset = await c.u64(`offset of ${name}`);
      tensors.push({ name, dims, type, offset });
    }
    return { version, metadata, tensors };
  } finally {
    await fh.close();
  }
}

function asNumber(v: GgufValue | undefined): number | null {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return null;
}
function asString(v: GgufValue | undefined): string | null {
  return typeof v === "string" ? v : null;
}

/** The few facts the registry shows, derived from a parsed file. */
export function summarizeGguf(file: GgufFile): GgufSummary {
  const md = file.metadata;
  const architecture = asString(md.get("general.architecture"));
  const name = asString(md.get("general.name"));
  const contextLength = architecture ? asNumber(md.get(`${architecture}.context_length`)) : null;

  let parameterCount = asNumber(md.get("general.parameter_count"));
  if (parameterCount === null && file.tensors.length > 0) {
    parameterCount = file.tensors.reduce((sum, t) => sum + t.dims.reduce((p, d) => p * d, 1), 0);
  }

  let quantization: string | null = null;
  const fileType = asNumber(md.get("general.file_type"));
  if (fileType !== null) quantization = FILE_TYPE_NAMES[fileType] ?? `file_type ${fileType}`;
  if (quantization === null && file.tensors.length > 0) {
    // The type holding the most weights; 1-D tensors (norms) are f32 in every quantization, so skip them.
    const byType = new Map<number, number>();
    const weighted = file.tensors.filter((t) => t.dims.length > 1);
    for (const t of weighted.length > 0 ? weighted : file.tensors) {
      byType.set(t.type, (byType.get(t.type) ?? 0) + t.dims.reduce((p, d) => p * d, 1));
    }
    const [dominant] = [...byType.entries()].sort((a, b) => b[1] - a[1]);
    if (dominant) quantization = GGML_TYPE_NAMES[dominant[0]] ?? `type ${dominant[0]}`;
  }
  return { architecture, name, parameterCount, quantization, contextLength };
}

/** Reads just enough of a file to summarize it. */
export async function readGgufSummary(path: string): Promise<GgufSummary> {
  return summarizeGguf(await readGguf(path, { maxArrayItems: 0 }));
}
