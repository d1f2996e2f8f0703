/**
 * The one vocabulary of server states and stop causes, shared by the host
 * agent, the control plane's fleet and registry, and the dashboard. Plain
 * data with no imports (like `extra-flags.ts`), so the browser bundle can use
 * it without zod or the protocol.
 *
 * States (the agent's view of one llama-server):
 *   stopped   not running
 *   starting  spawned, `/health` not yet 200
 *   ready     `/health` 200 (and the listener is ours)
 *   unhealthy was ready, `/health` now failing or timing out
 *   stopping  SIGTERM sent, waiting for the process group to end
 *   exited    ended without being asked (a crash); the app decides on a restart
 *   failed    could not start, or gave up after too many crashes
 */
export const SERVER_STATES = ["stopped", "starting", "ready", "unhealthy", "stopping", "exited", "failed"] as const;
export type ServerStateName = (typeof SERVER_STATES)[number];

/** States in which a process of ours exists (or may still exist, while stopping). */
export const ALIVE_STATES: ReadonlySet<string> = new Set<ServerStateName>(["starting", "ready", "unhealthy", "stopping"]);

/** True when `state` names a live process (see ALIVE_STATES). */
export function isAlive(state: string): boolean {
  return ALIVE_STATES.has(state);
}

/**
 * Why a server stopped or exited, as data. Every stop or exit carries one.
 *   requested   a user (dashboard, API, CLI) asked for it
 *   crash       it ended on its own (exit code or signal), or vanished unwatched
 *   host-stop   stopped on its host outside the app (`stop-metal-servers`)
 *   deadline    it did not become ready before its readiness deadline
 *   idle        an on-demand model unloaded after its idle time
 *   evicted     stopped to make room for another model's start
 *   worker-lost an RPC worker it depended on went away
 *   shutdown    stopped by the app as it shut down (its stop-servers-on-exit setting);
 *               sent only to agents with the feature shutdown-cause (an agent older than
 *               this cause would refuse a stop that named it); the app records it for
 *               the others itself
 *   restart     stopped by a restart (a user's, or one that applies saved settings); its
 *               start follows. Sent only to agents with the feature restart-cause, as
 *               `shutdown` is; the app records it for the others itself
 */
export const STOP_CAUSES = ["requested", "crash", "host-stop", "deadline", "idle", "evicted", "worker-lost", "shutdown", "restart"] as const;
export type StopCause = (typeof STOP_CAUSES)[number];

/** Human text of a cause, for the dashboard and event messages. */
export const STOP_CAUSE_TEXT: Record<StopCause, string> = {
  requested: "stopped on request",
  crash: "crashed",
  "host-stop": "stopped on its host",
  deadline: "readiness deadline passed",
  idle: "unloaded after its idle time",
  evicted: "evicted to make room",
  "worker-lost": "an RPC worker was lost",
  shutdown: "stopped at app shutdown",
  restart: "stopped to restart",
};

export function isStopCause(value: unknown): value is StopCause {
  return typeof value === "string" && (STOP_CAUSES as readonly string[]).includes(value);
}
