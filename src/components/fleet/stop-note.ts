/**
 * What a stop did, in words, from servers.stop's answer: the CLI prints it under the model's row, the
 * dashboard's Stop button shows it. Pure (the CLI imports it by a relative path).
 */
import { dueText } from "../../server/services/fleet/restart-policy";

/** The fields of a stop's result (ServerResult) this reads; all but name optional, so older apps' answers read too. */
export interface StopAnswer {
  name: string;
  state: string;
  notRunning?: boolean;
  previousState?: string;
  restartCancelled?: { dueAt: string; dueInMs: number };
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
