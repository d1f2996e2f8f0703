/**
 * Which agent a host's link reaches, and the edits that would change it while
 * models run there.
 *
 * The agent that started a model's server keeps its record (in its state
 * folder) and re-adopts it whenever a link to it opens again. The fleet opens
 * a new link when a host's connection fields change (fleet/links.ts,
 * connectionKey). When that new link reaches another agent (another machine,
 * account or state folder), that agent does not know the running servers:
 * the fleet counts them crashed and starts them again through it, while the
 * old ones keep running where they were, unwatched. Such an edit waits until
 * the host's models are stopped.
 *
 * Edits that reconnect to the same agent are not refused: the new link
 * re-adopts the servers. That is a pinned host key (it decides whether the
 * machine at the address is accepted, not which machine it is), a local
 * host's models folder or llama-server binary, an ssh host's name. Neither
 * are edits that leave the link alone (upstreamMode, directAddress,
 * modelPorts, memoryBudgetMiB, the path mapping): the gateway reads them per
 * request, at the edit's event.
 */
import { ALIVE_STATES } from "synapse-host-agent/server-states";
import { ServiceError, type FieldIssue } from "../errors";
import { shownValue } from "./edit-text";
import type { DbOrTx } from "./tx";

/** The fields of a host that say where its link goes. */
export interface HostReach {
  name: string;
  linkKind: string;
  sshHost: string | null;
  sshPort: number;
  sshUser: string | null;
  sshIdentityFile: string | null;
}

/** ssh fields that choose the agent the link reaches, each with why another value may be another agent. */
const SSH_REACH_FIELDS = {
  sshHost: "another address may be another machine",
  sshPort: "another port may be another machine's sshd",
  sshUser: "another user has its own agent",
  sshIdentityFile: "another key's authorized_keys line may force another agent",
} as const satisfies Partial<Record<keyof HostReach, string>>;

/** One edit that would move the host's link to another agent: the field, and what to say about it. */
export interface ReachChange {
  field: keyof HostReach;
  /** "change sshPort from 2222 to 2200", "rename box to studio". */
  edit: string;
  /** Why the new link would not know the running servers. */
  why: string;
}

/**
 * The edits from `before` to `after` that would make the host's link reach
 * another agent; none: its models may keep running. A switch of link kind
 * is the one change said (the ssh fields a switch sets or clears go with it).
 */
export function reachChanges(before: HostReach, after: HostReach): ReachChange[] {
  if (before.linkKind !== after.linkKind) {
    return [{ field: "linkKind", edit: `change linkKind from ${before.linkKind} to ${after.linkKind}`, why: `their servers would keep running on the ${before.linkKind} host, unwatched` }];
  }
  if (after.linkKind === "local") {
    // localAgentConfig: a local agent's state folder is named after its host (the "local" host's is the base folder).
    if (before.name === after.name) return [];
    return [{ field: "name", edit: `rename ${before.name} to ${after.name}`, why: "a local agent keeps its servers' records in a folder named after the host: under the new name it would not know them, and they would keep running unwatched" }];
  }
  return (Object.keys(SSH_REACH_FIELDS) as (keyof typeof SSH_REACH_FIELDS)[])
    .filter((f) => before[f] !== after[f])
    .map((f) => ({ field: f, edit: `change ${f} from ${shownValue(before[f])} to ${shownValue(after[f])}`, why: `${SSH_REACH_FIELDS[f]}, which would not know their servers: they would keep running unwatched` }));
}

/**
 * An edit that moves the host's link to another agent (reachChanges) while a
 * model on the host runs, or is wanted running, is CONFLICT: one issue per
 * field, each naming the models, the edit and why, and saying to stop them
 * first. Nothing to check (no such edit, no such model): returns.
 */
export async function assertReachKeptWhileRunning(tx: DbOrTx, hostId: string, before: HostReach, after: HostReach): Promise<void> {
  const changes = reachChanges(before, after);
  if (changes.length === 0) return;
  const models = await tx.model.findMany({ where: { hostId }, select: { name: true, server: { select: { observed: true, desired: true } } }, orderBy: { name: "asc" } });
  const running = models.flatMap((m) => {
    const observed = m.server?.observed ?? "stopped";
    if (ALIVE_STATES.has(observed)) return [`${m.name} (${observed})`];
    return m.server?.desired === "running" ? [`${m.name} (wanted running)`] : [];
  });
  if (running.length === 0) return;
  const issues: FieldIssue[] = changes.map((c) => ({ path: c.field, message: `models on host ${before.name} are running: ${running.join(", ")}; stop them first, then ${c.edit} (${c.why})` }));
  throw new ServiceError("CONFLICT", issues.map((i) => `${i.path}: ${i.message}`).join("; "), { issues });
}
