/**
 * Per-server log files. The server writes straight to the file (an O_APPEND
 * fd, no pipe through the agent) so it keeps running and logging when the
 * agent exits or restarts; a pipe would break and take the server down with
 * SIGPIPE. The size cap is kept by copy-and-truncate: with O_APPEND the
 * server's next write lands at the new end of the emptied file. One rotated
 * copy (`.1`) is kept.
 */
import { open } from "node:fs/promises";
import { closeSync, copyFileSync, fstatSync, mkdirSync, openSync, readSync, renameSync, statSync, truncateSync, writeSync } from "node:fs";
import path from "node:path";

export function rotatedPath(logPath: string): string {
  return `${logPath}.1`;
}

/**
 * Opens the log for a new process: rotates an oversized file first, then
 * writes a header line. Returns the fd for the child's stdout/stderr and the
 * offset where its output begins.
 * Synchronous on purpose: a few local metadata calls, made while the other
 * starts' checks are out; threadpool round trips under load cost more.
 */
export function openLogForChild(logPath: string, maxBytes: number, header: string): { fd: number; offset: number } {
  let size = 0;
  try {
    size = statSync(logPath).size;
  } catch (err) {
    // No log yet; and no folder either when the agent could not make it at its start (or it was removed since).
    if ((err as NodeJS.ErrnoException).code === "ENOENT") mkdirSync(path.dirname(logPath), { recursive: true, mode: 0o700 });
  }
  if (size > maxBytes) {
    renameSync(logPath, rotatedPath(logPath));
    size = 0;
  }
  const fd = openSync(logPath, "a", 0o600);
  try {
    const line = Buffer.from(`${header}\n`);
    writeSync(fd, line);
    return { fd, offset: size + line.length };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * Rotates when over the cap; returns true when it did. Synchronous inside: a
 * log flooding at 20 MB/s grows by tens of KB for every millisecond the
 * rotation waits in the threadpool, and the copy (copy_file_range) of a
 * 10 MiB file takes a few milliseconds.
 */
export async function enforceLogCap(logPath: string, maxBytes: number): Promise<boolean> {
  let size = 0;
  try {
    size = statSync(logPath).size;
  } catch {
    return false;
  }
  if (size <= maxBytes) return false;
  copyFileSync(logPath, rotatedPath(logPath));
  truncateSync(logPath, 0);
  return true;
}

/** Up to `maxBytes` from the end of a file (or of its first `end` bytes), with the offset they start at; null when there is no file. */
async function readTailBytes(file: string, maxBytes: number, end = Number.MAX_SAFE_INTEGER): Promise<{ buf: Buffer; start: number } | null> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch {
    return null;
  }
  try {
    const { size } = await fh.stat();
    const stop = Math.min(size, end);
    const len = Math.min(stop, maxBytes);
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, stop - len);
    return { buf: buf.subarray(0, bytesRead), start: stop - len };
  } finally {
    await fh.close();
  }
}

function tailLines(chunk: { buf: Buffer; start: number } | null): string[] {
  if (!chunk) return [];
  let text = chunk.buf.toString("utf8");
  // Drop a partial first line when we did not start at the beginning.
  if (chunk.start > 0) text = text.slice(text.indexOf("\n") + 1);
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

export interface LogTailOptions {
  maxBytes?: number;
  /**
   * Where the current file's tail ends, asked once the first read is done:
   * the offset up to which a follower has handed out lines. Lines past it are
   * left to the follower, so a reader of both sees each line once. When the
   * follower got further during the read, the rest up to it is read too.
   * Null: no follower, the whole file.
   */
  end?: () => number | null;
}

/** The last `lines` lines of a server's log (and of its rotated copy when the current file is short). */
export async function readLogTail(logPath: string, lines: number, options: LogTailOptions = {}): Promise<string[]> {
  const maxBytes = options.maxBytes ?? 2 * 1024 * 1024;
  let current = await readTailBytes(logPath, maxBytes);
  const older = tailLines(current).length < lines ? tailLines(await readTailBytes(rotatedPath(logPath), maxBytes)) : [];
  const end = current && options.end ? options.end() : null;
  if (current && end !== null) {
    const readTo = current.start + current.buf.length;
    if (end < readTo) current.buf = current.buf.subarray(0, Math.max(0, end - current.start));
    else if (end > readTo) current = (await readTailBytes(logPath, maxBytes, end)) ?? current;
  }
  return [...older, ...tailLines(current)].slice(-lines).map((l) => (l.length > 4096 ? `${l.slice(0, 4096)}…` : l));
}

/**
 * Follows a growing log file and hands out complete new lines. `poke()` asks
 * it to read now (the caller wires fs.watch and a timer to it); reads never
 * overlap, and a poke during a read causes one more read after it.
 */
export class LogFollower {
  private offset: number;
  /** Up to here every line has been handed out (the offset less the partial line held back). */
  private handedOut: number;
  /** The bytes after the last newline read (a line still being written). */
  private partial: Buffer = Buffer.alloc(0);
  /** One read buffer, reused. */
  private readonly buf: Buffer;
  private reading: Promise<void> | null = null;
  private again = false;
  /** Kept open while following: a server's log is read as it loads, and every 100 ms to a second after. */
  private fd: number | null = null;
  private closed = false;
  constructor(
    private readonly file: string,
    startOffset: number,
    private readonly onLines: (lines: string[]) => void,
    chunkBytes = 64 * 1024,
  ) {
    this.offset = startOffset;
    this.handedOut = startOffset;
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  /** The file offset up to which lines have been handed to `onLines`. */
  get emittedOffset(): number {
    return this.handedOut;
  }

  /** Reads what is new; resolves after a read that began after this call. */
  poke(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.reading) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      try {
        do {
          this.again = false;
          await this.readOnce();
        } while (this.again && !this.closed);
      } finally {
        this.reading = null;
        if (this.closed) this.release();
      }
    })();
    return this.reading;
  }

  /** Stops following and closes the file (after a read in progress). */
  close(): void {
    this.closed = true;
    if (!this.reading) this.release();
  }

  /** Hands out the lines written so far (a server's last words before it exited), then closes. */
  async finish(): Promise<void> {
    await this.poke().catch(() => undefined);
    this.close();
  }

  private release(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }

  /**
   * Reads to the end of the file. The reads are synchronous: a local file in
   * the page cache answers in microseconds, where each threadpool round trip
   * costs a wake-up of the loop (~0.1 ms of CPU here), and while servers load
   * their logs are read at every write. A big backlog is read a chunk per turn
   * of the loop.
   */
  private async readOnce(): Promise<void> {
    if (this.fd === null) {
      try {
        this.fd = openSync(this.file, "r");
      } catch {
        return;
      }
    }
    const fd = this.fd;
    while (!this.closed) {
      // Read first: a poke usually means new bytes.
      const bytesRead = readSync(fd, this.buf, 0, this.buf.length, this.offset);
      if (bytesRead === 0) {
        // Nothing new, or the size cap truncated the file in place (the same file, so the open fd
        // still reads it): then start over at the top.
        if (fstatSync(fd).size >= this.offset) return;
        this.offset = 0;
        this.handedOut = 0;
        this.partial = Buffer.alloc(0);
        continue;
      }
      this.offset += bytesRead;
      this.take(this.buf.subarray(0, bytesRead));
      if (bytesRead < this.buf.length) return;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Splits what was read into complete lines at byte level (a newline never falls inside a UTF-8 character). */
  private take(chunk: Buffer): void {
    const data = this.partial.length > 0 ? Buffer.concat([this.partial, chunk]) : chunk;
    const nl = data.lastIndexOf(0x0a);
    let lines: string[] = [];
    if (nl >= 0) {
      lines = data.subarray(0, nl).toString("utf8").split("\n");
      this.partial = Buffer.from(data.subarray(nl + 1)); // a copy: the read buffer is reused
    } else {
      this.partial = Buffer.from(data);
    }
    if (this.partial.length > 64 * 1024) {
      // A "line" this long is not one; hand it out rather than hold it forever.
      lines.push(this.partial.toString("utf8"));
      this.partial = Buffer.alloc(0);
    }
    this.handedOut = this.offset - this.partial.length;
    if (lines.length > 0) this.onLines(lines.map((l) => (l.length > 4096 ? `${l.slice(0, 4096)}…` : l)));
  }
}
