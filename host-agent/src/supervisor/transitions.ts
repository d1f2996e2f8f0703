/**
 * The one table of a managed server's state changes. A `ManagedServer`
 * changes state only through it; a change not listed here is a bug (it
 * throws under tests, and is logged as one in production, where the state
 * still follows what the processes did).
 *
 * A `ManagedServer` owns one process group (one spawn or one adoption), so
 * every object begins in `stopped` and never returns from `stopped` to a
 * live state: a new start makes a new object.
 */
import type { ServerStateName } from "../shared/server-states.ts";

export const TRANSITIONS: Readonly<Record<ServerStateName, readonly ServerStateName[]>> = {
  // spawned; adopted (ready, unhealthy, or still loading); a spawn that failed
  stopped: ["starting", "ready", "unhealthy", "failed"],
  // healthy and ours; a stop asked (or the deadline passed: the stop that follows ends in failed); exited while loading
  starting: ["ready", "stopping", "failed"],
  // health check failed; stop asked; crashed; stopped by another agent on the host (host-stop)
  ready: ["unhealthy", "stopping", "exited", "stopped"],
  unhealthy: ["ready", "stopping", "exited", "stopped"],
  // every process ended and the port free; or not (stop incomplete), or it was the deadline's stop
  stopping: ["stopped", "failed"],
  // a stop asked after a crash: it ends the leftovers (stopping) or only records the request (stopped)
  exited: ["stopping", "stopped"],
  // the same after a failure; a failed stop (port still held) is tried again through stopping
  failed: ["stopping", "stopped"],
};

/** True when the table lets a server go from `from` to `to`. */
export function canTransition(from: ServerStateName, to: ServerStateName): boolean {
  return TRANSITIONS[from].includes(to);
}

export class InvalidTransitionError extends Error {
  constructor(
    readonly id: string,
    readonly from: ServerStateName,
    readonly to: ServerStateName,
  ) {
    super(`bug: server ${id} cannot go from ${from} to ${to} (not in the transition table)`);
    this.name = "InvalidTransitionError";
  }
}
