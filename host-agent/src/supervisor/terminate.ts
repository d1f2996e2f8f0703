/**
 * Ending a server's process group: SIGTERM to the group, a second SIGTERM
 * if it is still there after `termRepeatMs`, SIGKILL to the group at the end
 * of the grace, then confirm that no process of the group is left and the
 * port is free. Every wait has a deadline.
 *
 * Why a second SIGTERM: llama-server's first one stops its task loop and
 * then joins its HTTP threads, and a thread answering a request waits for
 * a result that no longer comes until its client closes the connection
 * (seen with gdb on the build here: HTTP threads in
 * `server_response::recv_with_timeout`, the main thread in
 * `httplib::ThreadPool::shutdown`). A client that keeps its stream open
 * holds the stop until SIGKILL. A second SIGINT/SIGTERM makes llama-server
 * exit at once ("Received second interrupt, terminating immediately",
 * tools/server/server.cpp `signal_handler`), without the wait and with the
 * OS freeing its memory, as SIGKILL would, but as an exit of its own.
 *
 * Pid-reuse safety: the group is signalled only when its leader is the very
 * process we recorded (same start time), or, with the leader gone, when
 * live members remain that started no earlier than it (the kernel does not
 * hand out a pid that is still some group's id, so those are ours).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { canBind } from "./port.ts";
import { groupHasMembers, groupMembers, processInfo, type ProcessInfo } from "./process-table.ts";
import { AGENT_DEFAULTS } from "../env.ts";

export interface TerminateTarget {
  pid: number;
  pgid: number;
  startToken: string;
  port: number;
  bindAddress: string;
}

export interface TerminateResult {
  /**
   * "term": ended on the first SIGTERM; "term-again": ended after the second
   * SIGTERM, within the grace; "kill": needed SIGKILL; "gone": nothing of
   * ours was running; "foreign": the pid now belongs to another process, left alone.
   */
  ended: "term" | "term-again" | "kill" | "gone" | "foreign";
  portFree: boolean;
  /** Members still alive after SIGKILL and its deadline (should be empty). */
  survivors: number[];
  elapsedMs: number;
}

/** Order of two start tokens (negative: a started first); null when they cannot be compared. */
export function tokenOrder(a: string, b: string): number | null {
  const ma = /^linux:(\d+)$/.exec(a);
  const mb = /^linux:(\d+)$/.exec(b);
  if (ma?.[1] && mb?.[1]) return Number(ma[1]) - Number(mb[1]);
  const da = Date.parse(a.replace(/^ps:/, ""));
  const db = Date.parse(b.replace(/^ps:/, ""));
  return Number.isNaN(da) || Number.isNaN(db) ? null : da - db;
}

/** Live members of our group, or null when signalling the group could hit a process that is not ours. */
export async function ownedGroupMembers(t: TerminateTarget): Promise<ProcessInfo[] | null> {
  const leader = await processInfo(t.pid);
  if (leader && !leader.zombie && leader.startToken !== t.startToken) return null; // pid reused
  // While the leader lives the group is ours and not empty; enumerating the
  // rest (a scan of every process) is only needed once the leader is gone.
  if (leader && !leader.zombie) return [leader];
  const members = await groupMembers(t.pgid);
  // Leader gone: keep only members that started no earlier than it did.
  return members.filter((m) => {
    const order = tokenOrder(m.startToken, t.startToken);
    return order === null || order >= 0;
  });
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

/**
 * Sends `signal` to the group of `t` when it is still ours and not empty
 * (ownedGroupMembers); true when it was sent.
 */
export async function signalOwnedGroup(t: TerminateTarget, signal: NodeJS.Signals): Promise<boolean> {
  if (!(await ownedGroupMembers(t))?.length) return false;
  signalGroup(t.pgid, signal);
  return true;
}

/**
 * Waits until the group is empty, asking the kernel (cheap) rather than
 * listing processes (a /proc scan on Linux, a `ps` per process on macOS).
 * The list is made every 8th poll, since the kernel also counts a zombie
 * nobody has reaped yet, and at the deadline, to name what is left.
 */
async function waitGroupEmpty(t: TerminateTarget, deadlineMs: number): Promise<ProcessInfo[]> {
  const until = Date.now() + deadlineMs;
  let delay = 5;
  for (let poll = 1; ; poll++) {
    if (!groupHasMembers(t.pgid)) return [];
    if (poll % 8 === 0 || Date.now() >= until) {
      const left = (await ownedGroupMembers(t)) ?? [];
      if (left.length === 0 || Date.now() >= until) return left;
    }
    await sleep(Math.min(delay, Math.max(1, until - Date.now())));
    delay = Math.min(delay * 2, 50);
  }
}

/** Polls until host:port can be bound (true) or the deadline passes (false). */
export async function waitPortFree(port: number, host: string, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  let delay = 5;
  for (;;) {
    if (await canBind(port, host)) return true;
    if (Date.now() >= until) return false;
    await sleep(delay);
    delay = Math.min(delay * 2, 100);
  }
}

export interface TerminateOptions {
  /** How long SIGKILLed processes may take to go (ms; default AGENT_DEFAULTS.killDeadlineMs). */
  killDeadlineMs?: number;
  /** How long the port may take to be free afterwards (ms; default AGENT_DEFAULTS.portFreeDeadlineMs; 0: one look). */
  portDeadlineMs?: number;
  /** When the second SIGTERM goes, after the first (ms; default AGENT_DEFAULTS.termRepeatMs); none when the grace is not longer. */
  termRepeatMs?: number;
}

/**
 * Ends the group of `t`: SIGTERM, SIGTERM again after `termRepeatMs` if the
 * group is still there, SIGKILL at `graceMs` (ms after the first SIGTERM).
 * Never throws for a process that is gone; signals nothing that is not ours.
 */
export async function terminateGroup(t: TerminateTarget, graceMs: number, opts: TerminateOptions = {}): Promise<TerminateResult> {
  const started = Date.now();
  const members = await ownedGroupMembers(t);
  if (members === null) return { ended: "foreign", portFree: await canBind(t.port, t.bindAddress), survivors: [], elapsedMs: Date.now() - started };
  if (members.length === 0) return { ended: "gone", portFree: await waitPortFree(t.port, t.bindAddress, opts.portDeadlineMs ?? AGENT_DEFAULTS.portFreeDeadlineMs), survivors: [], elapsedMs: Date.now() - started };

  signalGroup(t.pgid, "SIGTERM");
  const termAt = Date.now();
  const repeatMs = opts.termRepeatMs ?? AGENT_DEFAULTS.termRepeatMs;
  let ended: TerminateResult["ended"] = "term";
  let left: ProcessInfo[];
  if (repeatMs < graceMs) {
    left = await waitGroupEmpty(t, repeatMs);
    if (left.length > 0) {
      // Ownership looked at again, as before the SIGKILL below; a group that emptied meanwhile ended on the first.
      if (await signalOwnedGroup(t, "SIGTERM")) ended = "term-again";
      left = await waitGroupEmpty(t, Math.max(0, graceMs - (Date.now() - termAt)));
    }
  } else {
    left = await waitGroupEmpty(t, graceMs);
  }
  if (left.length > 0) {
    ended = "kill";
    // Re-check ownership right before the SIGKILL: the group may have emptied and its id been reused meanwhile.
    if ((await ownedGroupMembers(t))?.length) signalGroup(t.pgid, "SIGKILL");
    left = await waitGroupEmpty(t, opts.killDeadlineMs ?? AGENT_DEFAULTS.killDeadlineMs);
  }
  const portFree = await waitPortFree(t.port, t.bindAddress, opts.portDeadlineMs ?? AGENT_DEFAULTS.portFreeDeadlineMs);
  return { ended, portFree, survivors: left.map((m) => m.pid), elapsedMs: Date.now() - started };
}
