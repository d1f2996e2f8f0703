/**
 * What a stop did, in words, from servers.stop's answer (and a restart recorded for a host that cannot be reached,
 * from servers.restart's): the CLI prints it under the model's row, the dashboard's buttons show it. Pure (the CLI
 * imports it by a relative path).
 */
import { dueText } from "../../server/services/fleet/restart-policy";

/** The fields of a stop's result (ServerResult) this reads; all but name optional, so older apps' answers read too. */
export interface StopAnswer {
  name: string;
  state: string;
  notRunning?: boolean;
  previousState?: string;
  restartCancelled?: { dueAt: string; dueInMs: number };
  stopPending?: { host: string; reason: string };
}

/**
 * For a stop whose host could not be reached (servers.stop's `stopPending`): what happens, as the CLI prints it
 * and the dashboard's toast says it. Null for any other stop.
 * "stop recorded, not yet made: host mac cannot be reached now (…); remote-tiny is stopped when it is reachable again"
 */
export function stopPendingNote(r: StopAnswer): string | null {
  if (!r.stopPending) return null;
  const { host, reason } = r.stopPending;
  return `stop recorded, not yet made: host ${host} cannot be reached now (${reason}); ${r.name} is stopped when the host is reachable again`;
}

/**
 * For a Restart whose host could not be reached (servers.restart's `restartPending`): what happens, as the CLI
 * prints it and the dashboard's toast says it, worded as a pending stop's. Null for any other restart.
 * "restart recorded, not yet made: host mac cannot be reached now (…); remote-tiny is restarted when the host is reachable again"
 */
export function restartPendingNote(r: { name: string; restartPending?: { host: string; reason: string } }): string | null {
  if (!r.restartPending) return null;
  const { host, reason } = r.restartPending;
  return `restart recorded, not yet made: host ${host} cannot be reached now (${reason}); ${r.name} is restarted when the host is reachable again`;
}

/**
 * One line for a stop that stopped (`state` stopped): "bench: stopped; its restart (due in 4.0 s) is
 * cancelled" for a model waiting to restart after a crash; "alpha had failed, nothing was running: recorded
 * as stopped" for a failed (or crashed) one; "alpha was not running: nothing was stopped" when nothing at
 * all ran. Null for a stop that ended a process (the row says it) or that did not stop.
 */
export function stopNote(r: StopAnswer): string | null {
  if (r.state !== "stopped") return null;
  if (r.restartCancelled) return `${r.name}: stopped; its restart (${dueText(r.restartCancelled.dueInMs)}) is cancelled`;
  if (r.previousState === "failed" || r.previousState === "exited") return `${r.name} had ${r.previousState === "failed" ? "failed" : "crashed"}, nothing was running: recorded as stopped (its last error stays as history)`;
  if (r.notRunning) return `${r.name} was not running: nothing was stopped`;
  return null;
}
