/**
 * Reads a GGUF file's header, metadata and tensor table (never the tensor
 * data). Every read is bounded: a hostile or corrupt file cannot make the
 * agent allocate without limit, loop forever, or work in proportion to what
 * its counts claim rather than to the bytes it really holds; a truncated,
 * sparse, byte-swapped or foreign file fails with an error that says which.
 *
 * Why our own reader and not `@huggingface/gguf` (0.4.6, compared on
 * 2026-11-30 on the tests' files and the hostile ones below): that library
 * reads past the end of a truncated file as zeros and returns a table of
 * empty tensor names instead of an error, decodes every array item (a
 * tokenizer's 150k strings) to summarize a file, and caps arrays at one
 * million items; it refuses the sparse file and the unknown item type
 * quickly, and it reads big-endian files, which llama.cpp on a Mac or a
 * Linux PC cannot load anyway. This reader gives what the memory estimator
 * needs (every tensor's ggml type and shape, the architecture's scalar keys
 * and short per-layer arrays) in a few hundred lines with no dependency.
 */
import { open, type FileHandle } from "node:fs/promises";
import { ByteCursor, U64_TOO_BIG } from "./cursor.ts";
import { GgufError } from "./error.ts";
import { FILE_TYPE_NAMES, GGML_TYPE_NAMES, GGUF_MAGIC, GgufValueType, SCALAR_SIZE } from "./format.ts";
import { errorMessage } from "../shared/error-text.ts";

export { GgufError };

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
  /** ggml order: innermost (fastest-varying) dimension first. */
  dims: number[];
  /** ggml tensor type code (`GGML_TYPE_NAMES`). */
  type: number;
  /**
   * Offset of the tensor's data from the start of the data section, in bytes: a number below 2^53 (any
   * real file), a bigint past it.
   */
  offset: number | bigint;
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

const MAX_STRING_BYTES = 1 << 20;
const MAX_KV_COUNT = 1_000_000;
const MAX_TENSOR_COUNT = 1_000_000;
const MAX_ARRAY_LENGTH = 100_000_000;
const MAX_DIMS = 8;
/**
 * Headers up to this size are read whatever the disk reports; past it, only
 * as far as the bytes the file stores (`st_blocks`), so a sparse file's holes
 * are never decoded. A real model's tensor data dwarfs its header, so this
 * never binds on one, even on a compressing file system.
 */
const HEADER_BYTES_ALWAYS_READ = 1 << 20;
/** Smallest encodings, for checking a count against the bytes left before looping. */
const MIN_KV_BYTES = 8 + 4 + 1; // empty key, type, a one-byte value
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8; // empty name, no dims, type, offset
const STRING_LENGTH_BYTES = 8;

/** A u32 whose bytes are reversed: a big-endian file's version reads as this. */
function byteSwap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function isValueType(t: number): boolean {
  return Number.isInteger(t) && t >= GgufValueType.UINT8 && t <= GgufValueType.FLOAT64;
}

/** 64-bit integers become numbers when exact, bigints otherwise. */
function narrow(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/** Decodes one GGUF file from a cursor; the field-by-field grammar of the format. */
class GgufParser {
  constructor(
    private readonly c: ByteCursor,
    private readonly path: string,
  ) {}

  private fail(message: string): never {
    throw new GgufError(`${this.path}: ${message}`);
  }

  async u32(what: string): Promise<number> {
    if (!this.c.has(4)) await this.c.fill(4, what);
    return this.c.u32();
  }
  async u64(what: string): Promise<bigint> {
    if (!this.c.has(8)) await this.c.fill(8, what);
    return this.c.u64();
  }
  /** A u64 count, at most `max` (no BigInt unless it is refused). */
  async count(what: string, max: number): Promise<number> {
    if (!this.c.has(8)) await this.c.fill(8, what);
    const v = this.c.u64AsNumber();
    if (v > max) {
      this.c.pos -= 8;
      this.fail(`${what} is ${this.c.u64()}, more than the limit of ${max} (corrupt file?)`);
    }
    return v;
  }
  async string(what: string): Promise<string> {
    const len = await this.count(`${what} length`, MAX_STRING_BYTES);
    if (!this.c.has(len)) await this.c.fill(len, what);
    return this.c.utf8(len);
  }
  /** A tensor's data offset: a number when below 2^53, else the exact bigint. */
  private offsetInMemory(): number | bigint {
    const v = this.c.u64AsNumber();
    if (v !== U64_TOO_BIG) return v;
    this.c.pos -= 8;
    return this.c.u64();
  }

  async scalar(type: number, what: string): Promise<GgufScalar> {
    if (type === GgufValueType.STRING) return this.string(what);
    const size = SCALAR_SIZE[type];
    if (size === undefined) return this.fail(`unknown GGUF value type ${type} for ${what}`);
    if (!this.c.has(size)) await this.c.fill(size, what);
    const b = this.c.bytes(size);
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
      default: return this.fail(`unknown GGUF value type ${type} for ${what}`);
    }
  }

  /** An array's items: kept when at most `maxItems`, else skipped with only the bounds checked. */
  async array(key: string, maxItems: number): Promise<GgufArray> {
    const itemType = await this.u32(`item type of ${key}`);
    // Checked before the length: an empty array of an unknown type is as foreign as a full one.
    if (itemType === GgufValueType.ARRAY) this.fail(`nested arrays in ${key} are not supported`);
    if (!isValueType(itemType)) this.fail(`unknown GGUF value type ${itemType} for the items of ${key}`);
    const length = await this.count(`length of ${key}`, MAX_ARRAY_LENGTH);
    const size = SCALAR_SIZE[itemType];
    this.c.claim(length, size ?? STRING_LENGTH_BYTES, `array ${key}`);
    if (length <= maxItems) {
      const items: GgufScalar[] = [];
      for (let j = 0; j < length; j++) items.push(await this.scalar(itemType, `${key}[${j}]`));
      return { kind: "array", itemType, length, items };
    }
    if (size !== undefined) {
      this.c.skip(size * length, key);
    } else {
      // Strings: walk the lengths without decoding, in one tight loop over the bytes in memory; one
      // string at a time through the checked path only where that loop stops (a chunk's end, an error).
      const tooLong = (j: number, len: number) =>
        this.fail(`${key}[${j}] length is ${len > Number.MAX_SAFE_INTEGER ? "more than 2^53" : len}, more than the limit of ${MAX_STRING_BYTES} (corrupt file?)`);
      let j = 0;
      while (j < length) {
        const r = this.c.skipStrings(length - j, MAX_STRING_BYTES);
        j += r.skipped;
        if (r.tooLong !== null) tooLong(j, r.tooLong);
        if (j >= length) break;
        if (!this.c.has(STRING_LENGTH_BYTES)) await this.c.fill(STRING_LENGTH_BYTES, `${key}[${j}] length`);
        const len = this.c.u64AsNumber();
        if (len > MAX_STRING_BYTES) tooLong(j, len);
        this.c.skip(len, `${key}[${j}]`);
        j++;
      }
    }
    return { kind: "array", itemType, length, items: null };
  }

  /** One tensor-table entry decoded from memory, or null (cursor moved; the caller restores it) when it is not all there or looks wrong. */
  private tensorInMemory(): GgufTensorInfo | null {
    const c = this.c;
    if (!c.has(8)) return null;
    const nameLength = c.u64AsNumber();
    if (nameLength > MAX_STRING_BYTES || !c.has(nameLength + 4)) return null;
    const name = c.utf8(nameLength);
    const nDims = c.u32();
    if (nDims > MAX_DIMS || !c.has(nDims * 8 + 4 + 8)) return null;
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) dims.push(c.u64AsNumber());
    const type = c.u32();
    const offset = this.offsetInMemory();
    return { name, dims, type, offset };
  }

  async file(maxArrayItems: number): Promise<GgufFile> {
    const magic = await this.u32("magic");
    if (magic !== GGUF_MAGIC) this.fail(`not a GGUF file (magic bytes are not "GGUF")`);
    const version = await this.u32("version");
    if (version !== 2 && version !== 3) {
      const swapped = byteSwap32(version);
      if (swapped >= 1 && swapped <= 3) this.fail(`big-endian GGUF is not supported (version ${swapped} written byte-swapped; llama.cpp on this machine reads little-endian files: convert the model again without --bigendian)`);
      this.fail(`unsupported GGUF version ${version} (this reader handles 2 and 3)`);
    }
    const tensorCount = await this.count("tensor count", MAX_TENSOR_COUNT);
    const kvCount = await this.count("metadata count", MAX_KV_COUNT);
    this.c.claim(kvCount, MIN_KV_BYTES, "metadata count");

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = await this.string(`metadata key #${i}`);
      const type = await this.u32(`type of ${key}`);
      if (type === GgufValueType.ARRAY) metadata.set(key, await this.array(key, maxArrayItems));
      else metadata.set(key, await this.scalar(type, key));
    }

    this.c.claim(tensorCount, MIN_TENSOR_INFO_BYTES, "tensor count");
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < tensorCount; i++) {
      // Synchronously while the entry's bytes are in memory (a promise per field costs more than the
      // decoding for a table of a thousand tensors); through the checked async path where they are not.
      const at = this.c.pos;
      const quick = this.tensorInMemory();
      if (quick) {
        tensors.push(quick);
        continue;
      }
      this.c.pos = at;
      const name = await this.string(`tensor #${i} name`);
      const nDims = await this.u32(`dimensions of ${name}`);
      if (nDims > MAX_DIMS) this.fail(`tensor ${name} has ${nDims} dimensions (corrupt file?)`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(Number(await this.u64(`dimension ${d} of ${name}`)));
      const type = await this.u32(`type of ${name}`);
      if (!this.c.has(8)) await this.c.fill(8, `offset of ${name}`);
      const offset = this.offsetInMemory();
      tensors.push({ name, dims, type, offset });
    }
    return { version, metadata, tensors };
  }
}

/**
 * Parses `path`'s header, metadata and tensor table.
 * Throws GgufError (message starts with the path) for a missing, foreign,
 * truncated, sparse, byte-swapped or otherwise corrupt file.
 */
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
    if (st.size < 4) throw new GgufError(`${path}: not a GGUF file (only ${st.size} bytes)`);
    // st.blocks is 0 on file systems that do not report it: then trust the size.
    const stored = st.blocks > 0 ? st.blocks * 512 : st.size;
    const storedLimit = Math.max(stored, HEADER_BYTES_ALWAYS_READ);
    const bounds =
      storedLimit < maxHeaderBytes
        ? { fileSize: st.size, limit: storedLimit, limitReason: `the ${stored} bytes this ${st.size}-byte file stores on disk (a sparse or incompletely downloaded file)` }
        : { fileSize: st.size, limit: maxHeaderBytes, limitReason: `the ${maxHeaderBytes}-byte limit on GGUF metadata` };
    const cursor = new ByteCursor(fh, bounds, path);
    try {
      return await new GgufParser(cursor, path).file(maxArrayItems);
    } finally {
      cursor.release();
    }
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
