/**
 * What a fleet row shows for a server: the agent's state, refined by what the
 * user asked for. A model the user wants running whose server has not begun
 * starting yet is "queued" (start-all works through the fleet in order);
 * "starting" reads as "loading" (the model is loading: /health says 503).
 * One rule for every reader: the dashboard's badges, the CLI's STATE column,
 * and the gateway's /v1/models and refusals (here, not under components/,
 * as the server and the CLI import it too; plain data, no React).
 */

import { SERVER_STATES, type ServerStateName } from "synapse-host-agent/server-states";

export { SERVER_STATES, type ServerStateName } from "synapse-host-agent/server-states";

export type DisplayKey = ServerStateName | "queued" | "idle";
export type Tone = "ok" | "warn" | "bad" | "info" | "idle";

export interface DisplayState {
  key: DisplayKey;
  label: string;
  tone: Tone;
  /** A transition in progress: the badge's dot pulses. */
  busy: boolean;
  description: string;
}

const DISPLAY: Record<DisplayKey, Omit<DisplayState, "key">> = {
  stopped: { label: "Stopped", tone: "idle", busy: false, description: "not running" },
  queued: { label: "Queued", tone: "idle", busy: true, description: "waiting for its turn to start" },
  idle: { label: "Idle", tone: "idle", busy: false, description: "on demand, not loaded: the gateway starts it on the first request that names it" },
  starting: { label: "Loading", tone: "info", busy: true, description: "started; loading the model (health check answers 503)" },
  ready: { label: "Ready", tone: "ok", busy: false, description: "serving: the health check answers 200" },
  unhealthy: { label: "Unhealthy", tone: "warn", busy: false, description: "was ready; the health check now fails" },
  stopping: { label: "Stopping", tone: "idle", busy: true, description: "asked to stop (SIGTERM sent)" },
  exited: { label: "Crashed", tone: "bad", busy: false, description: "ended without being asked to" },
  failed: { label: "Failed", tone: "bad", busy: false, description: "could not start, or crashed too often" },
};

export function isServerState(s: string): s is ServerStateName {
  return (SERVER_STATES as readonly string[]).includes(s);
}

/** `loadPolicy` "on-demand": a stopped model that is not wanted running is idle, waiting for a request, not stopped. */
export function displayState(state: string, desired: string | null | undefined, loadPolicy?: string | null): DisplayState {
  const s: ServerStateName = isServerState(state) ? state : "stopped";
  const key: DisplayKey = s === "stopped" && desired === "running" ? "queued" : s === "stopped" && loadPolicy === "on-demand" ? "idle" : s;
  return { key, ...DISPLAY[key] };
}

export interface RowActions {
  canStart: boolean;
  canStop: boolean;
  canRestart: boolean;
}

/** Which per-row buttons make sense for a state (the server is idempotent; this only spares pointless clicks). */
export function rowActions(state: string, desired: string | null | undefined): RowActions {
  const { key } = displayState(state, desired);
  return {
    canStart: key === "stopped" || key === "exited" || key === "failed" || key === "idle",
    canStop: key !== "stopped" || desired === "running",
    canRestart: key === "ready" || key === "unhealthy" || key === "starting" || key === "exited" || key === "failed",
  };
}
