/**
 * Writing a run's last line (run-header.ts runFooter) into its server's log, once per run. Several agents
 * may see one run end: the app's agent and `host-agent stop-metal-servers` (which adopted the server and
 * stopped it), or two agents that both watched a crash. Whichever writes first says how the run ended; the
 * others find that line after the run's header and add none.
 */
import { appendFileSync, closeSync, fstatSync, openSync, readSync } from "node:fs";
import { AGENT_LINE_PREFIX, RUN_FOOTER_PREFIX } from "../shared/run-header.ts";

/** How much of the log's end is read to find the run's last agent line (bytes): the run has ended, so its footer, if any, is at the very end. */
const LOOK_BACK_BYTES = 64 * 1024;

/**
 * True when the last of the agent's own lines in the last LOOK_BACK_BYTES of `logPath` is a run's last line
 * (the run has ended in the log already), false when it is a run's header, when there is none, or when the
 * file cannot be read. Synchronous: one small read, made where the run's end is handled in one step.
 */
export function runEndedInLog(logPath: string): boolean {
  let fd: number;
  try {
    fd = openSync(logPath, "r");
  } catch {
    return false;
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, LOOK_BACK_BYTES);
    const buf = Buffer.alloc(len);
    const n = readSync(fd, buf, 0, len, size - len);
    const lines = buf.subarray(0, n).toString("utf8").split("\n");
    // A first line cut by the window is not one of the agent's.
    if (size > len) lines.shift();
    const last = lines.findLast((l) => l.startsWith(AGENT_LINE_PREFIX));
    return last !== undefined && last.startsWith(RUN_FOOTER_PREFIX);
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * Appends `footer` (one line, runFooter's) to `logPath` unless the run already ended there (runEndedInLog).
 * Returns "written" or "already". Throws the file system's error when the append fails.
 */
export function appendRunFooter(logPath: string, footer: string): "written" | "already" {
  if (runEndedInLog(logPath)) return "already";
  appendFileSync(logPath, `${footer}\n`);
  return "written";
}
