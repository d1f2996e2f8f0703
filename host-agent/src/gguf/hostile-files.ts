/**
 * Hand-built GGUF headers that a corrupt download or a hostile file might
 * carry, for the reader's tests and `bench/gguf-reader.ts`. Each is written
 * byte by byte, since the project's writer only writes valid files.
 */
import { open, writeFile } from "node:fs/promises";
import { GGUF_MAGIC, GgufValueType } from "./format.ts";

function u32(v: number, bigEndian = false): Buffer {
  const b = Buffer.alloc(4);
  if (bigEndian) b.writeUInt32BE(v);
  else b.writeUInt32LE(v);
  return b;
}
function u64(v: bigint | number, bigEndian = false): Buffer {
  const b = Buffer.alloc(8);
  if (bigEndian) b.writeBigUInt64BE(BigInt(v));
  else b.writeBigUInt64LE(BigInt(v));
  return b;
}
function str(s: string, bigEndian = false): Buffer {
  const bytes = Buffer.from(s, "utf8");
  return Buffer.concat([u64(bytes.length, bigEndian), bytes]);
}
function header(tensorCount: number, kvCount: number, bigEndian = false): Buffer {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(GGUF_MAGIC); // the magic is the bytes "GGUF" in either byte order
  return Buffer.concat([magic, u32(3, bigEndian), u64(tensorCount, bigEndian), u64(kvCount, bigEndian)]);
}

/**
 * A sparse file declaring `count` empty strings (8 bytes each, all zero):
 * `count * 8` bytes long, a few KB on disk. Returns the file's length.
 */
export async function writeSparseStringArray(file: string, count: number): Promise<number> {
  const head = Buffer.concat([header(0, 1), str("tokenizer.ggml.tokens"), u32(GgufValueType.ARRAY), u32(GgufValueType.STRING), u64(count)]);
  const fh = await open(file, "w");
  try {
    await fh.write(head, 0, head.length, 0);
    await fh.truncate(head.length + count * 8); // the rest is a hole: zeros that take no disk
  } finally {
    await fh.close();
  }
  return head.length + count * 8;
}

/** One metadata array whose items have value type `itemType` (99 is no type), with `count` items and no item bytes. */
export async function writeArrayOfType(file: string, itemType: number, count: number): Promise<void> {
  await writeFile(file, Buffer.concat([header(0, 1), str("general.tags"), u32(GgufValueType.ARRAY), u32(itemType), u64(count)]));
}

/** A valid little GGUF v3 file written big-endian, as `convert_hf_to_gguf.py --bigendian` writes them. */
export async function writeBigEndian(file: string): Promise<void> {
  await writeFile(file, Buffer.concat([header(0, 1, true), str("general.architecture", true), u32(GgufValueType.STRING, true), str("llama", true)]));
}
