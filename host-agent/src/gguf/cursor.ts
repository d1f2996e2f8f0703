/**
 * A forward-only byte cursor over an open file, for the GGUF reader.
 *
 * Reads happen in chunks; decoding is synchronous once the bytes are in
 * memory (`has` / `fill`), so a header with millions of small items costs
 * memory-speed work per item rather than a promise per field.
 *
 * The cursor never goes past `limit`, which the reader sets from the bytes
 * the file really stores on disk (a sparse file of holes cannot make it read
 * hundreds of megabytes of zeros) and from its own ceiling on header size.
 */
import type { FileHandle } from "node:fs/promises";
import { GgufError } from "./error.ts";

const CHUNK = 1024 * 1024;

export interface CursorBounds {
  /** The file's length in bytes (`stat.size`). */
  fileSize: number;
  /** No byte at or past this offset is read. */
  limit: number;
  /** Why `limit` is where it is, for the error when a read would cross it. */
  limitReason: string;
}

export class ByteCursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0; // file offset of buf[0]
  /** File offset of the next byte to decode. */
  pos = 0;

  constructor(
    private readonly fh: FileHandle,
    private readonly bounds: CursorBounds,
    private readonly path: string,
  ) {}

  /** Bytes that may still be read: up to the end of the file or the limit, whichever is first. */
  remaining(): number {
    return Math.max(0, Math.min(this.bounds.fileSize, this.bounds.limit) - this.pos);
  }

  /** True when the next `n` bytes are in memory (decode them synchronously). */
  has(n: number): boolean {
    return this.pos + n <= this.bufStart + this.buf.length;
  }

  /** Throws the error for a read of `n` bytes at `pos` that would cross the end of the file or the limit. */
  private check(n: number, what: string): void {
    const end = this.pos + n;
    if (end > this.bounds.fileSize) throw new GgufError(`${this.path}: truncated GGUF file (ends at byte ${this.bounds.fileSize} while reading ${what} at byte ${this.pos})`);
    if (end > this.bounds.limit) throw new GgufError(`${this.path}: ${what} at byte ${this.pos} runs past ${this.bounds.limitReason}`);
  }

  /** Loads at least `n` bytes at `pos` into memory; errors when they are not in the file or past the limit. */
  async fill(n: number, what: string): Promise<void> {
    this.check(n, what);
    if (this.has(n)) return;
    const want = Math.min(Math.max(n, CHUNK), Math.min(this.bounds.fileSize, this.bounds.limit) - this.pos);
    // Not zero-filled: only the bytes read are kept (subarray below).
    const next = Buffer.allocUnsafe(want);
    const { bytesRead } = await this.fh.read(next, 0, want, this.pos);
    if (bytesRead < n) throw new GgufError(`${this.path}: truncated GGUF file (short read of ${what} at byte ${this.pos})`);
    this.buf = next.subarray(0, bytesRead);
    this.bufStart = this.pos;
  }

  /**
   * Refuses at once a count whose items could not fit in what is left:
   * `count` items of at least `minItemBytes` each. The claim is checked
   * against the real bytes before any loop runs.
   */
  claim(count: number, minItemBytes: number, what: string): void {
    const need = count * minItemBytes;
    const left = this.remaining();
    if (need > left) {
      if (this.bounds.fileSize - this.pos <= left) throw new GgufError(`${this.path}: truncated GGUF file (${what} claims ${count} items, at least ${need} bytes, but only ${left} bytes remain in the file)`);
      throw new GgufError(`${this.path}: ${what} claims ${count} items (at least ${need} bytes) but only ${left} bytes remain before ${this.bounds.limitReason}`);
    }
  }

  /** Moves past `n` bytes without reading them. */
  skip(n: number, what: string): void {
    this.check(n, what);
    this.pos += n;
  }

  // Synchronous decoders: the caller has made sure `has(size)` holds.
  u32(): number {
    const v = this.buf.readUInt32LE(this.pos - this.bufStart);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    const v = this.buf.readBigUInt64LE(this.pos - this.bufStart);
    this.pos += 8;
    return v;
  }
  /** A u64 as a number: exact up to 2^53, and at least 2^53 for anything larger (for length checks in hot loops). */
  u64AsNumber(): number {
    const at = this.pos - this.bufStart;
    const lo = this.buf.readUInt32LE(at);
    const hi = this.buf.readUInt32LE(at + 4);
    this.pos += 8;
    return hi > 0x1fffff ? Number.MAX_SAFE_INTEGER + 1 : hi * 0x100000000 + lo;
  }
  /**
   * Skips up to `count` length-prefixed strings that lie in memory, in one synchronous loop (a tokenizer
   * list is 150k of them). Stops, before the string it cannot judge, at the end of the bytes in memory, at
   * a string that would cross the end of the file or the limit (the caller's checked path then says
   * which), or at a length over `maxLength` (returned as `tooLong`, the cursor on its length field).
   */
  skipStrings(count: number, maxLength: number): { skipped: number; tooLong: number | null } {
    const buf = this.buf;
    const start = this.bufStart;
    const inMemory = start + buf.length;
    const end = Math.min(this.bounds.fileSize, this.bounds.limit);
    let pos = this.pos;
    let i = 0;
    let tooLong: number | null = null;
    while (i < count && pos + 8 <= inMemory) {
      // Byte reads, not readUInt32LE: this is the hot loop of a discovery (tens of ns a string less).
      const o = pos - start;
      const lo = (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16)) + buf[o + 3]! * 0x1000000;
      const hi = buf[o + 4]! | buf[o + 5]! | buf[o + 6]! | buf[o + 7]!; // only zero or not matters here
      if (hi !== 0 || lo > maxLength) {
        const high = buf.readUInt32LE(o + 4);
        tooLong = high > 0x1fffff ? Number.MAX_SAFE_INTEGER + 1 : high * 0x100000000 + lo;
        break;
      }
      if (pos + 8 + lo > end) break;
      pos += 8 + lo;
      i++;
    }
    this.pos = pos;
    return { skipped: i, tooLong };
  }
  bytes(n: number): Buffer {
    const at = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }
}
