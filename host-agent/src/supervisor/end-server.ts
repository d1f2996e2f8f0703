/**
 * Ending everything a server started: its process group (terminate.ts) and
 * every descendant that left the group (process-tree.ts), SIGTERM to all at
 * once (the group a second one 2 s on, terminate.ts), SIGKILL to what is left
 * after the grace. Then the port must be free;
 * when it is not, the holder is named: a stop never reports success while
 * something still listens on the server's port.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { findPortListener, type PortHolder } from "./port.ts";
import { processInfo, processTable } from "./process-table.ts";
import type { Descendants, TrackedProcess } from "./process-tree.ts";
import { terminateGroup, waitPortFree, type TerminateResult, type TerminateTarget } from "./terminate.ts";
import { AGENT_DEFAULTS } from "../env.ts";

export interface EndResult {
  /** How the group ended (terminate.ts); null when there was no group to look at. */
  group: TerminateResult | null;
  /** Descendants outside the group that needed SIGKILL. */
  killedDescendants: number[];
  /** Processes of ours still alive at the end (should be empty). */
  survivors: number[];
  /** Who still listens on the port after everything was ended; null when it is free. */
  portHeldBy: PortHolder | null;
}

export interface EndOptions {
  /** How long a SIGKILLed process may take to go (default AGENT_DEFAULTS.killDeadlineMs). */
  killDeadlineMs?: number;
}

/** How old a process table may be for a stop's first look (see processTable). */
const SHARED_TABLE_MS = 50;

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** The tracked processes that are still the same processes (pid reuse: never signal another program). */
async function stillOurs(list: readonly TrackedProcess[]): Promise<TrackedProcess[]> {
  const infos = await Promise.all(list.map((p) => processInfo(p.pid)));
  return list.filter((p, i) => {
    const info = infos[i];
    return info !== null && info !== undefined && !info.zombie && info.startToken === p.startToken;
  });
}

async function waitGone(list: readonly TrackedProcess[], deadlineMs: number): Promise<TrackedProcess[]> {
  const until = Date.now() + deadlineMs;
  let left = await stillOurs(list);
  for (let delay = 5; left.length > 0 && Date.now() < until; delay = Math.min(delay * 2, 50)) {
    await sleep(Math.min(delay, Math.max(1, until - Date.now())));
    left = await stillOurs(left);
  }
  return left;
}

/** The descendants to end apart from the group: those in another group (the group's own get the group's signal). */
function outsideGroup(tree: Descendants, pgid: number): TrackedProcess[] {
  return tree.list().filter((p) => p.pgid !== pgid);
}

/**
 * Ends the server's group and descendants. `target` null: the leader died
 * before its start time was read; its group id is still ours while it has
 * members, so the group gets SIGKILL at once.
 */
export async function endServer(target: TerminateTarget | null, pgid: number, tree: Descendants | null, graceMs: number, opts: EndOptions = {}): Promise<EndResult> {
  // One more look before anything is signalled: a child's parentage is lost once its parent dies. A table
  // read a moment ago (another server's stop in the same stop-all) shows the same parentage.
  if (tree) tree.observe(await processTable({ maxAgeMs: SHARED_TABLE_MS }), { markers: true });
  const others = tree ? outsideGroup(tree, pgid) : [];
  for (const p of others) signal(p.pid, "SIGTERM");
  let group: TerminateResult | null = null;
  const groupDone = target
    ? terminateGroup(target, graceMs, { killDeadlineMs: opts.killDeadlineMs, portDeadlineMs: 0 }).then((r) => void (group = r))
    : Promise.resolve(signal(-pgid, "SIGKILL"));
  let left = await waitGone(others, graceMs);
  for (const p of left) signal(p.pid, "SIGKILL");
  await groupDone;
  // What the descendants forked while they were being ended (a server that left its group once may do it again;
  // one that never did is not looked at twice: what it might fork now is found at the port, below).
  if (tree && others.length > 0) {
    tree.observe(await processTable(), { markers: true });
    const seen = new Set([...left, ...others].map((p) => p.pid));
    for (const p of outsideGroup(tree, pgid)) if (!seen.has(p.pid)) left.push(p);
    for (const p of left) signal(p.pid, "SIGKILL");
  }
  left = await waitGone(left, opts.killDeadlineMs ?? AGENT_DEFAULTS.killDeadlineMs);
  const leftPids = new Set(left.map((p) => p.pid));
  const killed = others.filter((o) => !leftPids.has(o.pid)).map((o) => o.pid);
  const survivors = [...left.map((p) => p.pid), ...((group as TerminateResult | null)?.survivors ?? [])];
  return { group, killedDescendants: killed, survivors, portHeldBy: null };
}

/**
 * After `endServer`: waits for the port, and names who holds it when it stays
 * taken. A holder that is one of ours (seen in the tree since) is ended too.
 */
export async function confirmPortFree(port: number, host: string, tree: Descendants | null, deadlineMs: number): Promise<PortHolder | null> {
  if (await waitPortFree(port, host, deadlineMs)) return null;
  const holder = (await findPortListener(port)) ?? { port, pid: null, command: null };
  // A fresh look: the holder may have been forked since the last one.
  if (tree && holder.pid !== null && !tree.has(holder.pid)) tree.observe(await processTable(), { markers: true });
  if (holder.pid !== null && tree?.has(holder.pid)) {
    signal(holder.pid, "SIGKILL");
    if (await waitPortFree(port, host, deadlineMs)) return null;
  }
  return holder;
}

/** "port 8081 still held by pid 4242 (node)": the words of an incomplete stop. */
export function describeHeldPort(h: PortHolder): string {
  if (h.pid === null) return `port ${h.port} still held (the holder is not visible to this user)`;
  return `port ${h.port} still held by pid ${h.pid}${h.command ? ` (${h.command})` : ""}`;
}
