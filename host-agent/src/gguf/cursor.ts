/**
 * A forward-only byte cursor over an open file, for the GGUF reader.
 *
 * Reads happen in chunks into one buffer the cursor borrows from a small
 * pool (chunk-pool.ts) and gives back when its file is closed; decoding is
 * synchronous once the bytes are in memory (`has` / `fill`), so a header
 * with millions of small items costs memory-speed work per item rather than
 * a promise per field.
 *
 * The cursor never goes past `limit`, which the reader sets from the bytes
 * the file really stores on disk (a sparse file of holes cannot make it read
 * hundreds of megabytes of zeros) and from its own ceiling on header size.
 */
import type { FileHandle } from "node:fs/promises";
import { CHUNK_BYTES, giveChunk, takeChunk } from "./chunk-pool.ts";
import { GgufError } from "./error.ts";

export interface CursorBounds {
  /** The file's length in bytes (`stat.size`). */
  fileSize: number;
  /** No byte at or past this offset is read. */
  limit: number;
  /** Why `limit` is where it is, for the error when a read would cross it. */
  limitReason: string;
}

const EMPTY = Buffer.alloc(0);
const TWO_32 = 0x100000000;
/** Returned by the u64-as-number readers for any value of 2^53 or more. */
export const U64_TOO_BIG = Number.MAX_SAFE_INTEGER + 1;

/** Where walkStrings stopped: the buffer offset, and a length over the limit found there (else null). */
const walked: { at: number; tooLong: number | null } = { at: 0, tooLong: null };

/**
 * The string-list walk: from buffer offset `at`, passes over up to `count` length-prefixed strings that
 * end at or before `stop`, reading each length and no string byte. Returns how many it passed; `walked`
 * says where it stopped and, when a length over `maxLength` stopped it, that length. About 3 ns a
 * string (a 152k-token list in under 0.5 ms); the loop keeps one compare per bound, the rare cases
 * (a length over the limit, a string past the buffer) are sorted out after it.
 */
function walkStrings(view: DataView, at: number, stop: number, count: number, maxLength: number): number {
  // Small integers for the JIT (offsets within a 1 MiB buffer; counts below 2^31): a cursor position
  // that once held a double would otherwise make every step float arithmetic, 2 to 3 times slower.
  at |= 0;
  stop |= 0;
  count = Math.min(count, 0x7fffffff) | 0;
  let i = 0;
  const last = stop - 8; // the last offset a length field may start at
  while (i < count && at <= last) {
    const lo = view.getUint32(at, true);
    if (lo > maxLength || view.getUint32(at + 4, true) !== 0) break;
    const next = at + 8 + lo;
    if (next > stop) break;
    at = next;
    i++;
  }
  walked.at = at;
  walked.tooLong = null;
  if (i < count && at <= last) {
    const lo = view.getUint32(at, true);
    const hi = view.getUint32(at + 4, true);
    if (hi !== 0 || lo > maxLength) walked.tooLong = hi > 0x1fffff ? U64_TOO_BIG : hi * TWO_32 + lo;
  }
  return i;
}

export class ByteCursor {
  /** The read buffer (a pooled chunk once the first read happens); its first `bufLength` bytes hold the file from `bufStart`. */
  private buf: Buffer = EMPTY;
  /** Little-endian reads of `buf` (DataView: a third of the time of byte-by-byte decoding in the string walk). */
  private view: DataView = new DataView(EMPTY.buffer, 0, 0);
  private bufLength = 0;
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
    return this.pos + n <= this.bufStart + this.bufLength;
  }

  /** Throws the error for a read of `n` bytes at `pos` that would cross the end of the file or the limit. */
  private check(n: number, what: string): void {
    const end = this.pos + n;
    if (end > this.bounds.fileSize) throw new GgufError(`${this.path}: truncated GGUF file (ends at byte ${this.bounds.fileSize} while reading ${what} at byte ${this.pos})`);
    if (end > this.bounds.limit) throw new GgufError(`${this.path}: ${what} at byte ${this.pos} runs past ${this.bounds.limitReason}`);
  }

  /**
   * Loads at least `n` bytes at `pos` into memory (a whole chunk when the file has it); errors when they
   * are not in the file or past the limit. The bytes before `pos` are gone afterwards: decoders copy what
   * they keep (strings are decoded, numbers read), and no view of the buffer outlives the call that made it.
   */
  async fill(n: number, what: string): Promise<void> {
    this.check(n, what);
    if (this.has(n)) return;
    const want = Math.min(Math.max(n, CHUNK_BYTES), Math.min(this.bounds.fileSize, this.bounds.limit) - this.pos);
    if (this.buf.length < want) {
      this.release();
      // Reads are at most a chunk (a string's length is capped at 1 MiB); a larger one gets its own buffer.
      this.buf = want <= CHUNK_BYTES ? takeChunk() : Buffer.allocUnsafeSlow(want);
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
    }
    this.bufLength = 0; // what it held is being overwritten
    const { bytesRead } = await this.fh.read(this.buf, 0, want, this.pos);
    if (bytesRead < n) throw new GgufError(`${this.path}: truncated GGUF file (short read of ${what} at byte ${this.pos})`);
    this.bufStart = this.pos;
    this.bufLength = bytesRead;
  }

  /** Gives the read buffer back to the pool; the cursor reads nothing after this. */
  release(): void {
    if (this.buf !== EMPTY) giveChunk(this.buf);
    this.buf = EMPTY;
    this.view = new DataView(EMPTY.buffer, 0, 0);
    this.bufLength = 0;
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

  /** Moves past `n` bytes without reading them (a numeric array is skipped by its size alone). */
  skip(n: number, what: string): void {
    this.check(n, what);
    this.pos += n;
  }

  // Synchronous decoders: the caller has made sure `has(size)` holds.
  u32(): number {
    const v = this.view.getUint32(this.pos - this.bufStart, true);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    const v = this.view.getBigUint64(this.pos - this.bufStart, true);
    this.pos += 8;
    return v;
  }
  /** A u64 as a number: exact below 2^53, and U64_TOO_BIG (2^53) for anything larger; no BigInt made. */
  u64AsNumber(): number {
    const at = this.pos - this.bufStart;
    const lo = this.view.getUint32(at, true);
    const hi = this.view.getUint32(at + 4, true);
    this.pos += 8;
    if (hi === 0) return lo; // stays a small integer where it can
    return hi > 0x1fffff ? U64_TOO_BIG : hi * TWO_32 + lo;
  }
  /**
   * Skips up to `count` length-prefixed strings that lie in memory, in one synchronous loop (a tokenizer
   * list is 150k of them), reading each length and no string byte. Stops, before the string it cannot
   * judge, at the end of the bytes in memory, at a string that would cross the end of the file or the
   * limit (the caller's checked path then says which), or at a length over `maxLength` (returned as
   * `tooLong`, the cursor on its length field).
   */
  skipStrings(count: number, maxLength: number): { skipped: number; tooLong: number | null } {
    const end = Math.min(this.bounds.fileSize, this.bounds.limit);
    // Offsets within the buffer; the walk stops where a string would cross the end of the file or limit.
    const stop = Math.min(this.bufLength, end - this.bufStart);
    const i = walkStrings(this.view, this.pos - this.bufStart, stop, count, maxLength);
    this.pos = this.bufStart + walked.at;
    return { skipped: i, tooLong: walked.tooLong };
  }
  /** The next `n` bytes decoded as UTF-8 (a copy: nothing keeps a view of the buffer). */
  utf8(n: number): string {
    const at = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.toString("utf8", at, at + n);
  }
  /** A view of the next `n` bytes, valid only until the next fill. */
  bytes(n: number): Buffer {
    const at = this.pos - this.bufStart;
    this.pos += n;
    return this.buf.subarray(at, at + n);
  }
}
