/**
 * What the playground's model picker says about each model, from the fleet's
 * status rows. Pure.
 *
 *   disabled                          listed, not pickable: "disabled: enable it on its model page"
 *   host not reachable (ssh down)     listed, pickable, with the link's error (the gateway answers 502)
 *   on demand, not loaded             pickable: the first message loads it
 *   crashed, its restart planned      pickable: a message waits for the restart (503 model_restarting's
 *                                     Retry-After, chat-stream.ts) and goes again
 *   always, stopped / crashed / failed pickable, with an offer to start it (the gateway answers 409
 *                                     model_stopped when stopped, 503 model_failed when crashed or failed)
 *   on demand, failed, or crashed     pickable, with an offer to start it (the gateway answers 503
 *     with no restart planned           model_failed until it is started, or a failed one's settings change)
 *   loading, ready                    pickable
 */
import { errorHeadline } from "synapse-host-agent/error-text";
import { displayState, type DisplayKey } from "~/shared/display-state";
import { errorSaysStartAgain } from "~/shared/failed-advice";

/** The status row's fields the picker reads (servers.status). */
export interface PickerRow {
  modelId: string;
  name: string;
  host: string;
  enabled: boolean;
  loadPolicy: string;
  state: string;
  desired: string;
  lastError: string | null;
  /** A crashed server's planned restart (ISO); null when none is planned. */
  nextRestartAt?: string | null;
  link: { kind: string; state: string | null; error: string | null };
}

export type ModelReadiness =
  /** Answers now. */
  | "ready"
  /** Loading (started by a request or a user). */
  | "loading"
  /** On demand and not loaded: a message loads it. */
  | "on-demand"
  /** Crashed, and the app restarts it by itself (its restart planned): a message waits for it. */
  | "restarting"
  /** Load policy always and not running: the user must start it. */
  | "needs-start"
  | "disabled";

export interface ModelChoice {
  id: string;
  name: string;
  host: string;
  pickable: boolean;
  readiness: ModelReadiness;
  display: DisplayKey;
  /** Short text after the name in the picker. */
  note: string;
  /** Why it cannot be picked (disabled), or what is wrong (host down, last error). */
  reason: string | null;
  /** Its last error's headline (errorHeadline); null when none. */
  error: string | null;
  /** Its last error says how to start it again (failed-advice.ts): nothing need be added after it. */
  errorSaysStartAgain: boolean;
}

export function modelChoice(r: PickerRow): ModelChoice {
  const d = displayState(r.state, r.desired, r.loadPolicy);
  const firstError = errorHeadline(r.lastError) || null;
  const base = { id: r.modelId, name: r.name, host: r.host, display: d.key, error: firstError, errorSaysStartAgain: errorSaysStartAgain(r.lastError) };
  if (!r.enabled) return { ...base, pickable: false, readiness: "disabled", note: "disabled", reason: "disabled: enable it on its model page to use it here" };
  const linkDown = r.link.kind === "ssh" && r.link.state !== null && r.link.state !== "connected";
  const hostReason = linkDown ? `host ${r.host} is not reachable${r.link.error ? `: ${r.link.error}` : ""}` : null;
  switch (d.key) {
    case "ready":
    case "unhealthy":
      return { ...base, pickable: true, readiness: "ready", note: d.key === "ready" ? "ready" : "unhealthy", reason: hostReason };
    case "starting":
    case "queued":
      return { ...base, pickable: true, readiness: "loading", note: "loading", reason: hostReason };
    case "idle":
      return { ...base, pickable: true, readiness: "on-demand", note: "on demand, loads on first message", reason: hostReason };
    case "stopping":
      return { ...base, pickable: true, readiness: r.loadPolicy === "on-demand" ? "on-demand" : "needs-start", note: "stopping", reason: hostReason };
    default:
      // Crashed, its restart planned (the app's auto-restart): neither "start it" nor a failure, for either policy.
      if (d.key === "exited" && r.desired === "running" && r.nextRestartAt) return { ...base, pickable: true, readiness: "restarting", note: "crashed, restarting", reason: hostReason ?? (firstError ? `last error: ${firstError}` : null) };
      // Stopped: an on-demand model is started by a request; an always one is not. Failed, or crashed while wanted
      // running with no restart planned (auto-restart off): neither, the gateway answers 503 model_failed until
      // someone starts it (or a saved change of a failed one's settings lets a request try: the page cannot
      // tell, and Start does the same).
      const endedForGood = d.key === "failed" || (d.key === "exited" && r.desired === "running");
      if (r.loadPolicy === "on-demand" && !endedForGood) return { ...base, pickable: true, readiness: "on-demand", note: d.label.toLowerCase(), reason: hostReason ?? (firstError ? `last error: ${firstError}` : null) };
      return { ...base, pickable: true, readiness: "needs-start", note: `${d.label.toLowerCase()}, start it to chat`, reason: hostReason ?? (firstError ? `last error: ${firstError}` : null) };
  }
}

/** Choices grouped by host (hosts and models by name), for <optgroup>s. */
export function choicesByHost(rows: readonly PickerRow[]): { host: string; choices: ModelChoice[] }[] {
  const groups = new Map<string, ModelChoice[]>();
  for (const r of [...rows].sort((a, b) => a.name.localeCompare(b.name))) {
    const list = groups.get(r.host) ?? [];
    list.push(modelChoice(r));
    groups.set(r.host, list);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([host, choices]) => ({ host, choices }));
}
