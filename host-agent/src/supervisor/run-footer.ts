/**
 * Writing a run's last line (run-header.ts runFooter) into its server's log, once per run. Several agents
 * may see one run end: the app's agent and `host-agent stop-metal-servers` (which adopted the server and
 * stopped it), or two agents that both watched a crash. Whichever writes first says how the run ended; the
 * others find that line after the run's header and add none. Nor is it written into a later run: an agent
 * that sees the end late (another agent stopped the server and started it again meanwhile) finds that run's
 * header, newer than the run it watched, as the log's last agent line.
 */
import { appendFileSync, closeSync, fstatSync, openSync, readSync } from "node:fs";
import { errorMessage } from "../shared/error-text.ts";
import { RUN_FOOTER_PREFIX, RUN_HEADER_PREFIX, runFooter } from "../shared/run-header.ts";
import type { Logger } from "./logger.ts";

/** How much of the log's end is read to find the run's last agent line (bytes): the run has ended, so its footer, if any, is at the very end. */
const LOOK_BACK_BYTES = 64 * 1024;

/** The time a run's header gives (`=== synapse host-agent: starting ID at TIME: …`), in ms; null when it has none. */
function headerTime(line: string): number | null {
  const m = / at (\d{4}-\d\d-\d\dT[\d:.]+Z): /.exec(line.slice(RUN_HEADER_PREFIX.length));
  return m ? Date.parse(m[1]!) : null;
}

/**
 * Whether the run that began at `runStartedAt` (ISO 8601; null: not known) still lacks its last line in
 * `logPath`: "ended" when the last run header or run end among the log's last LOOK_BACK_BYTES is a run's last
 * line; "later-run" when it is the header of a run that began after `runStartedAt` (the run's header is
 * written just before its spawn, so its own header is never later); else "open" (its header, no agent line in
 * reach, or a file that cannot be read). Synchronous: one small read, made where the run's end is handled in
 * one step.
 */
export function runEndInLog(logPath: string, runStartedAt: string | null): "ended" | "later-run" | "open" {
  return runEndIn(readTail(logPath, LOOK_BACK_BYTES), runStartedAt);
}

/** runEndInLog on the log's tail as readTail gives it (null: the file cannot be read). */
function runEndIn(tail: { size: number; bytes: Buffer } | null, runStartedAt: string | null): "ended" | "later-run" | "open" {
  if (tail === null) return "open";
  const lines = tail.bytes.toString("utf8").split("\n");
  // A first line cut by the window is not one of the agent's.
  if (tail.size > tail.bytes.length) lines.shift();
  // A run's header or last line; the app's notes (APP_NOTE_PREFIX) come after a run's end and end nothing.
  const last = lines.findLast((l) => l.startsWith(RUN_HEADER_PREFIX) || l.startsWith(RUN_FOOTER_PREFIX));
  if (last === undefined) return "open";
  if (last.startsWith(RUN_FOOTER_PREFIX)) return "ended";
  const began = last.startsWith(RUN_HEADER_PREFIX) ? headerTime(last) : null;
  const started = runStartedAt === null ? Number.NaN : Date.parse(runStartedAt);
  return began !== null && began > started ? "later-run" : "open";
}

/** The last `maxBytes` (at most) of `logPath` and the file's size, in one synchronous read; null when it cannot be read. */
function readTail(logPath: string, maxBytes: number): { size: number; bytes: Buffer } | null {
  let fd: number;
  try {
    fd = openSync(logPath, "r");
  } catch {
    return null;
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    const n = readSync(fd, buf, 0, len, size - len);
    return { size, bytes: buf.subarray(0, n) };
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** "\n" when `tail` (readTail's) does not end with a line break, else "" (lineBreakBefore). */
function breakAfter(tail: { bytes: Buffer } | null): string {
  return tail !== null && tail.bytes.length > 0 && tail.bytes[tail.bytes.length - 1] !== 0x0a ? "\n" : "";
}

/**
 * Appends `footer` (one line, runFooter's) to `logPath` for the run that began at `runStartedAt` (ISO 8601;
 * null: not known), unless that run already ended there or a later run has begun (runEndInLog). Returns
 * "written", "ended" or "later-run". Throws the file system's error when the append fails.
 */
export function appendRunFooter(logPath: string, footer: string, runStartedAt: string | null): "written" | "ended" | "later-run" {
  // One read tells both whether the run ended there and whether the log ends in the middle of a line.
  const tail = readTail(logPath, LOOK_BACK_BYTES);
  const end = runEndIn(tail, runStartedAt);
  if (end !== "open") return end;
  appendFileSync(logPath, `${breakAfter(tail)}${footer}\n`);
  return "written";
}

/**
 * "\n" when the file's last byte is not a line break (a server killed in the middle of writing a line: a CI run
 * found the footer glued to llama-server's "0.00.017.568 I "), else "": what an agent line appended to it starts
 * with, so that it stands on a line of its own. "" for an empty or unreadable file.
 */
export function lineBreakBefore(logPath: string): string {
  return breakAfter(readTail(logPath, 1));
}

/**
 * Ends run `run` (its server id, log file and ISO start time, null when not known) in its log: runFooter's
 * line for `state`, `cause` and `reason`, stamped now, through appendRunFooter (once per run, never into a
 * later one). A log that cannot be written is warned about through `log`; the run ends all the same (its
 * status carries the same words).
 */
export function endRunInLog(log: Logger, run: { id: string; logPath: string; startedAt: string | null }, state: string, cause: string | null, reason: string): void {
  try {
    appendRunFooter(run.logPath, runFooter(run.id, new Date(), state, cause, reason), run.startedAt);
  } catch (err) {
    log.warn("could not write the run's last line to its log", { id: run.id, logPath: run.logPath, error: errorMessage(err) });
  }
}
