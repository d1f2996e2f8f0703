/**
 * Per-server log files. The server writes straight to the file (an O_APPEND
 * fd, no pipe through the agent) so it keeps running and logging when the
 * agent exits or restarts; a pipe would break and take the server down with
 * SIGPIPE. The size cap is kept by copy-and-truncate: with O_APPEND the
 * server's next write lands at the new end of the emptied file. One rotated
 * copy (`.1`) is kept.
 */
import { open, unlink } from "node:fs/promises";
import { closeSync, constants, copyFileSync, fstatSync, ftruncateSync, mkdirSync, openSync, readSync, renameSync, statSync, writeSync } from "node:fs";
import path from "node:path";

export function rotatedPath(logPath: string): string {
  return `${logPath}.1`;
}

let replacedCopies = 0;

/**
 * Makes `from` the log's rotated copy (`.1`) without renaming it over the
 * last copy. On ext4 a rename over an existing file first writes out the
 * renamed file's data (auto_da_alloc), and the agent's event loop waits for
 * it: beside two `dd … conv=fsync` loops, renames over `.1` of a log
 * flooding at 20 MB/s took up to 400 ms, while the log grew 8 MB past its
 * 2 MiB cap (log-flood test). So the last copy is moved aside under a name of
 * its own (`.1.drop-PID-N`, a rename onto no file, which writes nothing out)
 * and removed in the threadpool; then `from` takes the free name. Between the
 * two renames, microseconds apart, there is no `.1`: a reader opening it then
 * reads the current file alone. Throws the rename's error (ENOENT when
 * `from` is gone), the last copy then back under its name; a copy moved
 * aside that cannot be removed stays beside the log.
 */
function replaceRotatedCopy(from: string, logPath: string): void {
  const target = rotatedPath(logPath);
  const aside = `${target}.drop-${process.pid}-${++replacedCopies}`;
  let movedAside = false;
  try {
    renameSync(target, aside);
    movedAside = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err; // no copy yet: nothing to move aside
  }
  try {
    renameSync(from, target);
  } catch (err) {
    // The last copy goes back to its name rather than lingering under the other one.
    if (movedAside) {
      try {
        renameSync(aside, target);
      } catch {
        // left beside the log, under the aside name
      }
    }
    throw err;
  }
  if (movedAside) void unlink(aside).catch(() => undefined);
}

/**
 * Opens the log for a new process: rotates an oversized file first, then
 * writes a header line. Returns the fd for the child's stdout/stderr, the
 * offset where its output begins, and the offset of the header line (where a
 * follower of this run starts: the live log shows where a run begins and its
 * command line).
 * Synchronous on purpose: a few local metadata calls, made while the other
 * starts' checks are out; threadpool round trips under load cost more.
 */
export function openLogForChild(logPath: string, maxBytes: number, header: string): { fd: number; offset: number; headerOffset: number } {
  let size = 0;
  try {
    size = statSync(logPath).size;
  } catch (err) {
    // No log yet; and no folder either when the agent could not make it at its start (or it was removed since).
    if ((err as NodeJS.ErrnoException).code === "ENOENT") mkdirSync(path.dirname(logPath), { recursive: true, mode: 0o700 });
  }
  if (size > maxBytes) {
    replaceRotatedCopy(logPath, logPath);
    size = 0;
  }
  const fd = openSync(logPath, "a", 0o600);
  try {
    const line = Buffer.from(`${header}\n`);
    writeSync(fd, line);
    return { fd, offset: size + line.length, headerOffset: size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** How many times a rotation copies what the server wrote during its last copy, at most (see enforceLogCap). */
const CATCH_UP_PASSES = 8;

/**
 * Rotates when over the cap: copies the file to a temporary name (`.1.new`),
 * then what the server wrote meanwhile, truncates the file in place, and
 * renames the copy over the last one (`.1`). Returns the number of bytes
 * copied, or null when the file is within the cap (or missing). Throws the
 * file system's error when the copy, the truncation or the rename fails (a
 * `.1.new` left behind, by that or by a crash, is overwritten by the next
 * rotation).
 *
 * Synchronous: a log flooding at 20 MB/s grows by tens of KB for every
 * millisecond the rotation waits in the threadpool. The bulk copy
 * (copy_file_range on Linux) of a 10 MiB file takes milliseconds, and much
 * more on a loaded machine: what the server writes during it is copied after
 * it, up to CATCH_UP_PASSES times, each pass shorter than the one before, so
 * what is lost is what the server writes between the last size check and the
 * truncation, two system calls apart (the price of copy-and-truncate, which
 * keeps the server's O_APPEND fd valid). A fresh-user trial lost six requests'
 * lines in one rotation of a 10 MiB log when only the bulk copy was made. The
 * rename makes the copy a new file: a reader that has the last copy open
 * (readLogTail, whose reads run in the threadpool; someone's `less`) keeps its
 * bytes, and no reader of `.1` sees a half-written copy. The bulk copy is a
 * clone where the file system can make one, and the rename never goes over
 * the last copy (replaceRotatedCopy): neither waits for the disk to write. The caller tells the
 * follower (LogFollower.rotated) in the same synchronous step.
 *
 * `afterBulkCopy` (tests): runs once the bulk copy is made, where a server's
 * writes during it would land.
 */
export function enforceLogCap(logPath: string, maxBytes: number, afterBulkCopy?: () => void): number | null {
  let size = 0;
  try {
    size = statSync(logPath).size;
  } catch {
    return null;
  }
  if (size <= maxBytes) return null;
  const copy = `${rotatedPath(logPath)}.new`;
  // A clone where the file system makes one (APFS, btrfs, XFS): no data written, so no wait on a busy disk.
  copyFileSync(logPath, copy, constants.COPYFILE_FICLONE);
  afterBulkCopy?.();
  const copied = catchUpAndTruncate(logPath, copy);
  replaceRotatedCopy(copy, logPath);
  return copied;
}

/**
 * Appends to `copy` what `logPath` has past the copy's length, until a pass finds nothing new (CATCH_UP_PASSES
 * at most), then truncates `logPath` through the fd that checked its size (the next system call); returns the
 * copy's length.
 */
function catchUpAndTruncate(logPath: string, copy: string): number {
  const src = openSync(logPath, "r+");
  try {
    const dst = openSync(copy, "a");
    try {
      let copied = fstatSync(dst).size;
      const buf = Buffer.allocUnsafe(64 * 1024);
      for (let pass = 0; ; pass++) {
        const end = fstatSync(src).size;
        if (end <= copied || pass === CATCH_UP_PASSES) break;
        while (copied < end) {
          const n = readSync(src, buf, 0, Math.min(buf.length, end - copied), copied);
          if (n === 0) break;
          writeSync(dst, buf, 0, n);
          copied += n;
        }
      }
      ftruncateSync(src, 0);
      return copied;
    } finally {
      closeSync(dst);
    }
  } finally {
    closeSync(src);
  }
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
   * Where the tail ends, asked once the first reads are done: how far a
   * follower has handed out lines, in the current file (`offset`) and, while
   * it still reads the rotated copy or holds its unfinished last line, in the
   * copy (`rotatedOffset`; null: all of it). Lines past them are left to the follower, so a reader of both sees
   * each line once. When the follower got further during the read, the rest
   * up to it is read too. Null: no follower, the whole files.
   */
  end?: () => { offset: number; rotatedOffset: number | null } | null;
  /**
   * How many rotations the follower has been told of (LogFollower.rotations).
   * `end`'s offsets are of the files as they are when it is asked: when the
   * count changed while the tail was read (the files were read before a
   * rotation, or cut after it), the tail is read again, up to 3 times in all.
   */
  rotations?: () => number;
}

/** `chunk` cut or extended to end at file offset `end` (re-read from `file` when the follower got past what was read). */
async function cutAt(file: string, chunk: { buf: Buffer; start: number } | null, end: number, maxBytes: number): Promise<{ buf: Buffer; start: number } | null> {
  if (!chunk) return chunk;
  const readTo = chunk.start + chunk.buf.length;
  if (end < readTo) return { buf: chunk.buf.subarray(0, Math.max(0, end - chunk.start)), start: chunk.start };
  if (end > readTo) return (await readTailBytes(file, maxBytes, end)) ?? chunk;
  return chunk;
}

/** The longest log line handed out (characters): a tail's, a search's and a follower's lines are cut there, with "…". */
export const LOG_LINE_MAX_CHARS = 4096;

/** `line`, cut at LOG_LINE_MAX_CHARS with "…" when longer. */
export function cutLongLine(line: string): string {
  return line.length > LOG_LINE_MAX_CHARS ? `${line.slice(0, LOG_LINE_MAX_CHARS)}…` : line;
}

/**
 * `read()` once, and again while the follower was told of a rotation during it (`options.rotations` changed),
 * up to 3 times in all (see LogTailOptions.rotations): readLogTail's and searchLog's reads of the two files.
 */
export async function readAcrossRotations<T>(options: Pick<LogTailOptions, "rotations">, read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const before = options.rotations?.();
    const got = await read();
    if (before === undefined || options.rotations!() === before || attempt === 3) return got;
  }
}

/** The last `lines` lines of a server's log (and of its rotated copy when the current file is short). */
export async function readLogTail(logPath: string, lines: number, options: LogTailOptions = {}): Promise<string[]> {
  return readAcrossRotations(options, () => readLogTailOnce(logPath, lines, options));
}

async function readLogTailOnce(logPath: string, lines: number, options: LogTailOptions): Promise<string[]> {
  const maxBytes = options.maxBytes ?? 2 * 1024 * 1024;
  let current = await readTailBytes(logPath, maxBytes);
  let older = tailLines(current).length < lines ? await readTailBytes(rotatedPath(logPath), maxBytes) : null;
  const end = current && options.end ? options.end() : null;
  if (end) {
    current = await cutAt(logPath, current, end.offset, maxBytes);
    if (end.rotatedOffset !== null) {
      // The follower is still in the copy: nothing of the current file is out yet, and the copy only up to there.
      older = await cutAt(rotatedPath(logPath), older ?? (await readTailBytes(rotatedPath(logPath), maxBytes)), end.rotatedOffset, maxBytes);
    }
  }
  return [...tailLines(older), ...tailLines(current)].slice(-lines).map(cutLongLine);
}

/**
 * Follows a growing log file and hands out complete new lines. `poke()` asks
 * it to read now (the caller wires fs.watch and a timer to it); reads never
 * overlap, and a poke during a read causes one more read after it. A poke's
 * promise waits for the bytes the file held when it was made, not for a file
 * that keeps growing (Supervisor.logs waits on one before it takes a tail).
 *
 * A rotation (enforceLogCap) never waits for the reader: `rotated()` tells it
 * that the bytes it had not read yet are in the copy, and it reads them from
 * there before the file's new top. One copy is read at a time: a reader so far
 * behind that the file was rotated again before it finished the last copy
 * drops the rest of that copy and says how much with a note line
 * (LOG_READ_BEHIND_NOTE); the file's size bound never depends on how fast
 * lines are read.
 */
export class LogFollower {
  private offset: number;
  /** Up to here every line of the current file has been handed out (the offset less the partial line held back). */
  private handedOut: number;
  /** The bytes after the last newline read (a line still being written). */
  private partial: Buffer = Buffer.alloc(0);
  /** One read buffer, reused. */
  private readonly buf: Buffer;
  private reading: Promise<void> | null = null;
  private again = false;
  /** Bytes read (or dropped) since this follower began, across rotations: what pokes wait for. */
  private consumed = 0;
  /** Pokes waiting for the bytes the file held when they were made. */
  private waiters: { upTo: number; resolve: () => void }[] = [];
  /** Kept open while following: a server's log is read as it loads, and every 100 ms to a second after. */
  private fd: number | null = null;
  /** The rotated copy's bytes not read yet when the file was rotated: [pos, end) of the copy open as fd. */
  private backlog: { fd: number; pos: number; end: number } | null = null;
  /**
   * How far the rotated copy was read (its length, once read to its end); null before any rotation. While the
   * partial line is longer than what was read of the file, its start is the copy's end: not handed out yet.
   */
  private copyReadTo: number | null = null;
  private rotationCount = 0;
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

  /** The file offset up to which lines have been handed to `onLines` (0 while the rotated copy is still being read). */
  get emittedOffset(): number {
    return this.handedOut;
  }

  /**
   * While the rotated copy is still being read, or the line it ends with is still being written (it runs on
   * into the file): the offset in the copy up to which lines have been handed out; else null (all of it).
   */
  get emittedRotatedOffset(): number | null {
    if (this.backlog) return Math.max(0, this.backlog.pos - this.partial.length);
    const inCopy = this.partial.length - this.offset;
    return this.copyReadTo !== null && inCopy > 0 ? Math.max(0, this.copyReadTo - inCopy) : null;
  }

  /**
   * The file was copied to `copyPath` (`copiedBytes` long, a new file renamed
   * into place) and truncated in place, synchronously, just before this call:
   * the bytes from where this reader got to up to `copiedBytes` are read from
   * the copy, then the file from its top. Call it before any other read of
   * the file (in the same turn of the event loop as the truncation).
   */
  rotated(copyPath: string, copiedBytes: number): void {
    if (this.closed) return;
    this.rotationCount += 1;
    if (this.backlog) {
      // The copy being read is replaced by this one: the rest of it, and its partial line, are not read.
      this.consumed += this.backlog.end - this.backlog.pos;
      const dropped = this.backlog.end - this.backlog.pos + this.partial.length;
      this.closeBacklog();
      this.partial = Buffer.alloc(0);
      this.onLines([`${LOG_READ_BEHIND_NOTE} ${dropped} bytes of this log were rotated twice before they were read (not sent live)`]);
    }
    this.copyReadTo = Math.min(this.offset, copiedBytes);
    if (this.offset < copiedBytes) {
      try {
        this.backlog = { fd: openSync(copyPath, "r"), pos: this.offset, end: copiedBytes };
      } catch (err) {
        const dropped = copiedBytes - this.offset + this.partial.length;
        this.partial = Buffer.alloc(0);
        this.onLines([`${LOG_READ_BEHIND_NOTE} ${dropped} bytes of this log were rotated before they were read, and the copy could not be opened (${(err as NodeJS.ErrnoException).code ?? String(err)}; not sent live)`]);
      }
    }
    this.offset = 0;
    this.handedOut = 0;
    // What a poke waits for is now in this copy (what the server wrote between the copy and the truncation is
    // in neither file): it waits for the copy at most.
    const reachable = this.consumed + (this.backlog ? this.backlog.end - this.backlog.pos : 0);
    for (const w of this.waiters) w.upTo = Math.min(w.upTo, reachable);
    this.settle(false);
  }

  /** How many rotations this reader has been told of (see LogTailOptions.rotations). */
  get rotations(): number {
    return this.rotationCount;
  }

  /**
   * Reads what is new. Resolves once the bytes the file held when it was called have been read (or
   * counted as dropped), or when reading stops (at the file's end, on close, or on an error): never later,
   * however fast the file keeps growing. The reading itself goes on to the file's end.
   */
  poke(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const waited = new Promise<void>((resolve) => this.waiters.push({ upTo: this.consumed + this.unread(), resolve }));
    if (this.reading) {
      this.again = true;
      return Promise.race([waited, this.reading]);
    }
    this.reading = (async () => {
      try {
        do {
          this.again = false;
          await this.readOnce();
        } while (this.again && !this.closed);
      } finally {
        this.reading = null;
        this.settle(true);
        if (this.closed) this.release();
      }
    })();
    // Whichever comes first: the bytes read, or the reading's end (an error of the read rejects).
    return Promise.race([waited, this.reading]);
  }

  /** Bytes not read yet: the rest of the rotated copy, and of the file as it is now (0 when it cannot be seen). */
  private unread(): number {
    const back = this.backlog ? this.backlog.end - this.backlog.pos : 0;
    let size = 0;
    try {
      size = this.fd !== null ? fstatSync(this.fd).size : statSync(this.file).size;
    } catch {
      size = 0;
    }
    return back + Math.max(0, size - this.offset);
  }

  /** Resolves the pokes whose bytes are read; all of them when `all` (reading stopped). */
  private settle(all: boolean): void {
    if (this.waiters.length === 0) return;
    const left: typeof this.waiters = [];
    for (const w of this.waiters) (all || this.consumed >= w.upTo ? w.resolve() : left.push(w));
    this.waiters = left;
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
    this.closeBacklog();
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) closeQuietly(fd);
  }

  private closeBacklog(): void {
    if (this.backlog) closeQuietly(this.backlog.fd);
    this.backlog = null;
  }

  /**
   * Reads to the end of the file (the rotated copy's unread bytes first). The
   * reads are synchronous: a local file in the page cache answers in
   * microseconds, where each threadpool round trip costs a wake-up of the loop
   * (~0.1 ms of CPU here), and while servers load their logs are read at every
   * write. A big backlog is read a chunk per turn of the loop.
   */
  private async readOnce(): Promise<void> {
    while (!this.closed) {
      const back = this.backlog;
      if (back) {
        const bytesRead = readSync(back.fd, this.buf, 0, Math.min(this.buf.length, back.end - back.pos), back.pos);
        back.pos += bytesRead;
        this.copyReadTo = back.pos;
        // A copy shorter than it was said to be ends here too (its missing bytes count as read).
        if (bytesRead === 0 || back.pos >= back.end) {
          this.consumed += back.end - back.pos;
          this.closeBacklog();
        }
        this.consumed += bytesRead;
        if (bytesRead > 0) this.take(this.buf.subarray(0, bytesRead));
        this.settle(false);
        if (bytesRead === this.buf.length) await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      if (this.fd === null) {
        try {
          this.fd = openSync(this.file, "r");
        } catch {
          return;
        }
      }
      // Read first: a poke usually means new bytes.
      const bytesRead = readSync(this.fd, this.buf, 0, this.buf.length, this.offset);
      if (bytesRead === 0) {
        // Nothing new, or the file was truncated in place by someone else than the cap (the same file, so the
        // open fd still reads it): then start over at the top.
        if (fstatSync(this.fd).size >= this.offset) return;
        this.offset = 0;
        this.handedOut = 0;
        this.partial = Buffer.alloc(0);
        // What the pokes waited for is gone with the truncation.
        this.settle(true);
        continue;
      }
      this.offset += bytesRead;
      this.consumed += bytesRead;
      this.take(this.buf.subarray(0, bytesRead));
      this.settle(false);
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
    // Of the current file: none while the copy is read (a partial line of the copy may run on into the file).
    this.handedOut = this.backlog ? 0 : Math.max(0, this.offset - this.partial.length);
    if (lines.length > 0) this.onLines(lines.map(cutLongLine));
  }
}

/** How a follower's note line begins when lines were rotated away before it read them. */
export const LOG_READ_BEHIND_NOTE = "[synapse host-agent] log read fell behind:";

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
