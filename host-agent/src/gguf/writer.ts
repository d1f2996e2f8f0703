/**
 * A small GGUF v3 writer: enough to produce real, loadable model files for
 * tests (f32 tensors, scalar/string/array metadata). Builds the whole file in
 * memory, so it is meant for small files only.
 */
import { writeFile, rename, rm, truncate } from "node:fs/promises";
import { GGML_TYPES_BY_CODE, ggmlBytes } from "../shared/ggml-types.ts";
import { splitPartPath } from "../shared/split-name.ts";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, GGML_TYPE_F32, GgufValueType } from "./format.ts";

export type GgufWriteValue =
  | { type: "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64"; value: number }
  | { type: "u64" | "i64"; value: number | bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: "string"; value: string[] }
  | { type: "array"; itemType: "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "f64"; value: number[] }
  | { type: "array"; itemType: "u64" | "i64"; value: (number | bigint)[] }
  | { type: "array"; itemType: "bool"; value: boolean[] };

export interface GgufWriteTensor {
  name: string;
  /** ggml order: innermost (fastest-varying) dimension first. */
  dims: number[];
  data: Float32Array;
}

const TYPE_CODE = {
  u8: GgufValueType.UINT8, i8: GgufValueType.INT8, u16: GgufValueType.UINT16, i16: GgufValueType.INT16,
  u32: GgufValueType.UINT32, i32: GgufValueType.INT32, f32: GgufValueType.FLOAT32, f64: GgufValueType.FLOAT64,
  u64: GgufValueType.UINT64, i64: GgufValueType.INT64, bool: GgufValueType.BOOL, string: GgufValueType.STRING,
} as const;

/** Appends little-endian fields to one growing buffer (a 150k-token vocabulary is 450k fields). */
class ByteWriter {
  private buf = Buffer.alloc(64 * 1024);
  length = 0;
  private room(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // Each write takes its offset first: room() may replace the buffer.
  u32(v: number) {
    const at = this.room(4);
    this.buf.writeUInt32LE(v, at);
  }
  u64(v: number | bigint) {
    const at = this.room(8);
    this.buf.writeBigUInt64LE(BigInt(v), at);
  }
  string(s: string) {
    const n = Buffer.byteLength(s, "utf8");
    this.u64(n);
    const at = this.room(n);
    this.buf.write(s, at, "utf8");
  }
  scalar(type: keyof typeof TYPE_CODE, v: number | bigint | boolean | string) {
    switch (type) {
      case "u8": { const at = this.room(1); this.buf.writeUInt8(v as number, at); return; }
      case "i8": { const at = this.room(1); this.buf.writeInt8(v as number, at); return; }
      case "u16": { const at = this.room(2); this.buf.writeUInt16LE(v as number, at); return; }
      case "i16": { const at = this.room(2); this.buf.writeInt16LE(v as number, at); return; }
      case "u32": { const at = this.room(4); this.buf.writeUInt32LE(v as number, at); return; }
      case "i32": { const at = this.room(4); this.buf.writeInt32LE(v as number, at); return; }
      case "f32": { const at = this.room(4); this.buf.writeFloatLE(v as number, at); return; }
      case "f64": { const at = this.room(8); this.buf.writeDoubleLE(v as number, at); return; }
      case "u64": { const at = this.room(8); this.buf.writeBigUInt64LE(BigInt(v as number | bigint), at); return; }
      case "i64": { const at = this.room(8); this.buf.writeBigInt64LE(BigInt(v as number | bigint), at); return; }
      case "bool": { const at = this.room(1); this.buf.writeUInt8(v ? 1 : 0, at); return; }
      case "string": return this.string(v as string);
    }
  }
  pad(alignment: number) {
    const rem = this.length % alignment;
    if (rem !== 0) this.room(alignment - rem); // the buffer is zero-filled
  }
  concat(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** A tensor as the header lists it: name, shape, ggml type and its data's size in bytes. */
interface TensorEntry {
  name: string;
  dims: number[];
  type: number;
  bytes: number;
}

/** Header, metadata and tensor table, padded to the data section; returns the data section's size too. */
function encodeHeader(metadata: Record<string, GgufWriteValue>, tensors: TensorEntry[]): { header: Buffer; dataBytes: number } {
  const alignment = GGUF_DEFAULT_ALIGNMENT;
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  const entries = Object.entries(metadata);
  w.u64(entries.length);
  for (const [key, v] of entries) {
    w.string(key);
    if (v.type === "array") {
      w.u32(GgufValueType.ARRAY);
      w.u32(TYPE_CODE[v.itemType]);
      w.u64(v.value.length);
      for (const item of v.value) w.scalar(v.itemType, item);
    } else {
      w.u32(TYPE_CODE[v.type]);
      w.scalar(v.type, v.value);
    }
  }
  let offset = 0;
  for (const t of tensors) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(offset);
    offset += Math.ceil(t.bytes / alignment) * alignment;
  }
  w.pad(alignment);
  return { header: w.concat(), dataBytes: offset };
}

export function encodeGguf(metadata: Record<string, GgufWriteValue>, tensors: GgufWriteTensor[]): Buffer {
  const entries = tensors.map((t) => {
    const elements = t.dims.reduce((p, d) => p * d, 1);
    if (elements !== t.data.length) throw new Error(`tensor ${t.name}: dims ${t.dims.join("x")} need ${elements} values, got ${t.data.length}`);
    return { name: t.name, dims: t.dims, type: GGML_TYPE_F32, bytes: elements * 4 };
  });
  const { header, dataBytes } = encodeHeader(metadata, entries);
  const out = Buffer.alloc(header.length + dataBytes);
  header.copy(out, 0);
  let at = header.length;
  for (const t of tensors) {
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at);
    at += Math.ceil(t.data.byteLength / GGUF_DEFAULT_ALIGNMENT) * GGUF_DEFAULT_ALIGNMENT;
  }
  return out;
}

/** A tensor of a sparse file: its data is all zeros (a hole), whatever its ggml type. */
export interface GgufSparseTensor {
  name: string;
  /** ggml order: innermost (fastest-varying) dimension first. */
  dims: number[];
  /** ggml type code (shared/ggml-types.ts), e.g. 1 for f16, 8 for q8_0. */
  type: number;
}

function sparseEntry(t: GgufSparseTensor): TensorEntry {
  const type = GGML_TYPES_BY_CODE.get(t.type);
  if (!type) throw new Error(`tensor ${t.name}: unknown ggml type ${t.type}`);
  const elements = t.dims.reduce((p, d) => p * d, 1);
  return { ...t, bytes: ggmlBytes(type, t.dims[0] ?? 1, elements) };
}

/**
 * Writes a GGUF file whose tensor data is a hole: the header is written, then the file is extended to its
 * full size, so a model of hundreds of MiB costs a few KiB of disk and milliseconds. Every weight reads as
 * zero (a valid value for every ggml type), which llama-server loads and runs like any other model: what
 * it is for is sizing (memory estimates against llama.cpp's own), not text. Atomic like writeGguf.
 */
export async function writeGgufSparse(filePath: string, metadata: Record<string, GgufWriteValue>, tensors: GgufSparseTensor[]): Promise<void> {
  const { header, dataBytes } = encodeHeader(metadata, tensors.map(sparseEntry));
  const tmp = `${filePath}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeFile(tmp, header);
    await truncate(tmp, header.length + dataBytes);
    await rename(tmp, filePath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** writeGgufSparse as a split set (parts named and tagged as writeGgufSplit does); returns the parts' paths. */
export async function writeGgufSparseSplit(prefix: string, metadata: Record<string, GgufWriteValue>, tensors: GgufSparseTensor[], count: number): Promise<string[]> {
  return writeParts(prefix, metadata, tensors, count, writeGgufSparse);
}

/** Writes atomically (temp file + rename) so a reader never sees half a model. */
export async function writeGguf(filePath: string, metadata: Record<string, GgufWriteValue>, tensors: GgufWriteTensor[]): Promise<void> {
  const tmp = `${filePath}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeFile(tmp, encodeGguf(metadata, tensors));
    await rename(tmp, filePath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes a split set as llama.cpp's `llama-gguf-split` does: tensors in
 * order over `count` parts (each part at least one tensor), all metadata in
 * the first part, and `split.no` (u16, 0-based), `split.count` (u16) and
 * `split.tensors.count` (i32) in every part. Returns the parts' paths.
 */
export async function writeGgufSplit(prefix: string, metadata: Record<string, GgufWriteValue>, tensors: GgufWriteTensor[], count: number): Promise<string[]> {
  return writeParts(prefix, metadata, tensors, count, writeGguf);
}

async function writeParts<T>(prefix: string, metadata: Record<string, GgufWriteValue>, tensors: T[], count: number, write: (file: string, md: Record<string, GgufWriteValue>, part: T[]) => Promise<void>): Promise<string[]> {
  if (!Number.isInteger(count) || count < 2 || count > tensors.length) throw new Error(`a split set needs 2 to ${tensors.length} parts, not ${count}`);
  const paths: string[] = [];
  const per = Math.ceil(tensors.length / count);
  for (let i = 0; i < count; i++) {
    const split: Record<string, GgufWriteValue> = {
      "split.no": { type: "u16", value: i },
      "split.count": { type: "u16", value: count },
      "split.tensors.count": { type: "i32", value: tensors.length },
    };
    const part = tensors.slice(i * per, i === count - 1 ? tensors.length : (i + 1) * per);
    const file = splitPartPath(prefix, i + 1, count);
    await write(file, i === 0 ? { ...metadata, ...split } : split, part);
    paths.push(file);
  }
  return paths;
}
