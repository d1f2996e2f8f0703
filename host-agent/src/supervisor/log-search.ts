/**
 * Searching a server's whole log (the rotated copy `X.log.1`, then `X.log`) for the lines that contain a
 * text: the agent's `logs` with `grep` (feature log-search). The files are read a chunk at a time, so the
 * memory a search holds is one chunk and the matches it returns (not the files, nor every matching line),
 * and the event loop it shares with the servers' log followers (and, for the local agent, with the app) is
 * never held for longer than one chunk's lines.
 */
import { open } from "node:fs/promises";
import { cutLongLine, LOG_LINE_MAX_CHARS, readAcrossRotations, rotatedPath, type LogTailOptions } from "./log-file.ts";

/**
 * How much of each log file a search reads, from its end (bytes): the default cap (10 MiB) and its slack fit
 * many times over; a log kept under a larger cap (up to 10 GiB) is searched at its end, and the answer says so.
 */
export const LOG_SEARCH_MAX_BYTES = 64 * 1024 * 1024;

/** How much is read and searched at a time (bytes). */
const CHUNK_BYTES = 1024 * 1024;
/** A "line" longer than this without a newline is searched as one line and cut there (the follower does the same). */
const MAX_LINE_BYTES = 64 * 1024;

/** What `searchLog` found. */
export interface LogSearchResult {
  /** The last `lines` matching lines, oldest first (each at most LOG_LINE_MAX_CHARS, cut around its match: cutAroundMatch). */
  lines: string[];
  /** How many lines matched in all (lines holds the last of them). */
  matches: number;
  /** Bytes searched, in the rotated copy and the current file together. */
  searchedBytes: number;
  /** False when a file was longer than the search reads (LOG_SEARCH_MAX_BYTES) and only its end was searched. */
  searchedAll: boolean;
}

/**
 * A matching line as handed out: whole up to LOG_LINE_MAX_CHARS (cutLongLine, as a tail's); a longer line whose
 * first match `at` (a character index) lies past that cut is cut around the match instead, "…" on each cut side,
 * so the line shown still holds the text searched for (and the page can mark it).
 */
export function cutAroundMatch(line: string, at: number, length: number): string {
  if (line.length <= LOG_LINE_MAX_CHARS || at + length <= LOG_LINE_MAX_CHARS) return cutLongLine(line);
  const start = Math.max(0, Math.min(line.length - LOG_LINE_MAX_CHARS, at - Math.floor((LOG_LINE_MAX_CHARS - length) / 2)));
  const end = start + LOG_LINE_MAX_CHARS;
  return `${start > 0 ? "…" : ""}${line.slice(start, end)}${end < line.length ? "…" : ""}`;
}

/**
 * Where in `line` the character lies that begins at `lowerAt` (a UTF-16 index) in `line.toLowerCase()`: the same
 * index unless a character before it is longer in lower case (Turkish "İ" is "i̇", two characters), when the
 * index in the lower-case text runs ahead of the line's.
 */
function indexBeforeLowerCase(line: string, lowerAt: number): number {
  let at = 0;
  let lowered = 0;
  for (const ch of line) {
    if (lowered >= lowerAt) return at;
    lowered += ch.toLowerCase().length;
    at += ch.length;
  }
  return at;
}

/** The last `size` matching lines, in a ring (a search that matches every line of a long log keeps only these). */
class LastMatches {
  private readonly ring: string[] = [];
  count = 0;
  constructor(private readonly size: number) {}
  /** `at`: where the match begins in `line`; `length`: the text's length. */
  add(line: string, at: number, length: number): void {
    this.ring[this.count % this.size] = cutAroundMatch(line, at, length);
    this.count += 1;
  }
  /** Oldest first. */
  lines(): string[] {
    if (this.count <= this.size) return this.ring.slice(0, this.count);
    const at = this.count % this.size;
    return [...this.ring.slice(at), ...this.ring.slice(0, at)];
  }
}

/**
 * The lines of a server's log files (the rotated copy, then the current file) that contain `text`, ignoring
 * case: the last `lines` of them (1 or more) and how many matched. Each file is searched over its last
 * `options.maxBytes` (LOG_SEARCH_MAX_BYTES by default) up to where `options.end` cuts it: a follower's
 * offsets, asked once before the files are read (Supervisor.logs takes the live lines' seq with them), so a
 * search and the live lines after that seq neither lose nor repeat a line; a rotation meanwhile (the count
 * `options.rotations` changed) searches again, up to 3 times in all. A file that does not exist is searched
 * as empty. Throws the file system's error when a file cannot be read.
 */
export async function searchLog(logPath: string, text: string, lines: number, options: LogTailOptions = {}): Promise<LogSearchResult> {
  return readAcrossRotations(options, () => searchOnce(logPath, text.toLowerCase(), Math.max(1, Math.floor(lines)), options));
}

async function searchOnce(logPath: string, needle: string, lines: number, options: LogTailOptions): Promise<LogSearchResult> {
  const maxBytes = options.maxBytes ?? LOG_SEARCH_MAX_BYTES;
  const cut = options.end?.() ?? null;
  const found = new LastMatches(lines);
  // While the follower is still in the copy, nothing of the current file is out yet (its offset is 0 then).
  const older = await searchFile(rotatedPath(logPath), cut?.rotatedOffset ?? Number.MAX_SAFE_INTEGER, maxBytes, needle, found);
  const current = await searchFile(logPath, cut ? cut.offset : Number.MAX_SAFE_INTEGER, maxBytes, needle, found);
  return { lines: found.lines(), matches: found.count, searchedBytes: older.bytes + current.bytes, searchedAll: older.all && current.all };
}

/**
 * Searches `file` from `maxBytes` before its end (or before `endAt`, when that comes first) to there, a chunk
 * at a time; a first line the window cuts is left out. The last line is searched even without its newline.
 */
async function searchFile(file: string, endAt: number, maxBytes: number, needle: string, found: LastMatches): Promise<{ bytes: number; all: boolean }> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { bytes: 0, all: true };
    throw err;
  }
  try {
    const { size } = await fh.stat();
    const stop = Math.min(size, endAt);
    const start = Math.max(0, stop - maxBytes);
    const buf = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, Math.max(1, stop - start)));
    let carry: Buffer = Buffer.alloc(0);
    let skipFirst = start > 0;
    const check = (line: string) => {
      const lower = line.toLowerCase();
      const at = lower.indexOf(needle);
      if (at !== -1) found.add(line, lower.length === line.length ? at : indexBeforeLowerCase(line, at), needle.length);
    };
    for (let pos = start; pos < stop; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, stop - pos), pos);
      if (bytesRead === 0) break; // shorter than it was (truncated meanwhile): what was read is what there is
      pos += bytesRead;
      let data = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      if (skipFirst) {
        const nl = data.indexOf(0x0a);
        if (nl < 0) {
          carry = Buffer.alloc(0);
          continue;
        }
        data = data.subarray(nl + 1);
        skipFirst = false;
      }
      // Split at byte level: a newline never falls inside a UTF-8 character, so no character is cut.
      const nl = data.lastIndexOf(0x0a);
      if (nl >= 0) for (const line of data.subarray(0, nl).toString("utf8").split("\n")) check(line);
      // A copy: the read buffer is reused.
      carry = Buffer.from(data.subarray(nl + 1));
      if (carry.length > MAX_LINE_BYTES) {
        check(carry.toString("utf8"));
        carry = Buffer.alloc(0);
      }
    }
    if (carry.length > 0 && !skipFirst) check(carry.toString("utf8"));
    return { bytes: stop - start, all: start === 0 };
  } finally {
    await fh.close();
  }
}
