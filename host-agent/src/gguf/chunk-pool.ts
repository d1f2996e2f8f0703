/**
 * Read buffers for the GGUF reader, kept between files. A discovery reads hundreds of headers of a few
 * MiB each; a fresh 1 MiB buffer per read was garbage the collector had to sweep every few models (the
 * reason the mean time per model stood well above the median). A buffer is lent to one cursor at a
 * time (taken when it first reads, given back when its file is closed), so concurrent reads never share
 * one; at most POOL_MAX buffers are kept, the rest are left to the collector.
 */

/** Bytes per read of a header: a 152k-token vocabulary (about 3.5 MiB of header) takes 4 reads. */
export const CHUNK_BYTES = 1024 * 1024;
/** Buffers kept while no cursor holds them: POOL_MAX MiB at most. */
const POOL_MAX = 4;
const free: Buffer[] = [];

/** A CHUNK_BYTES buffer, not zeroed: the caller reads into it before decoding any byte of it. */
export function takeChunk(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
}

/** Gives `buf` (from takeChunk) back; the caller must keep no view of it. */
export function giveChunk(buf: Buffer): void {
  if (buf.length === CHUNK_BYTES && free.length < POOL_MAX && !free.includes(buf)) free.push(buf);
}

/** Buffers kept now (for tests). */
export function pooledChunks(): number {
  return free.length;
}
