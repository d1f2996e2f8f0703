/**
 * What a request for a model does, given the model's recorded state: go
 * ahead, start it (on-demand), wait (loading, or a start is already under
 * way), or answer an error. Pure; the gateway loops on it (ensure-ready.ts).
 *
 *   disabled                       409 model_disabled
 *   ready                          proceed
 *   starting / stopping            wait (and decide again)
 *   stopping, always, not wanted   409 model_stopped at once (a person stopped it: a
 *                                    request does not wait for its process to end)
 *   stopped, wanted running        wait (the reconcile loop is starting it)
 *   stopped, on-demand             start, then decide again
 *   stopped, always                409 model_stopped, saying how to start it
 *   exited with a restart pending  503, Retry-After = the backoff's end
 *   exited, its restart due        wait: its start is under way (the fleet keeps the due
 *     (the due time has passed)      time until the start's outcome is recorded; tens of
 *                                    ms; a trial's client, told 503 and not to retry
 *                                    there, gave up as the model came back)
 *   exited, auto-restart on, none  wait: a restart's start that failed, between the
 *     planned yet, its state         agent's report of it and the restart policy's
 *     written < RESTART_GAP_WAIT_MS  decision (ms)
 *     ago
 *   failed / exited for good       503, Retry-After, with the reason
 *   failed, on-demand, its saved   start (a saved fix: its settings make another
 *     settings changed since         spec than the start that failed was given;
 *                                    unchanged ones keep answering 503, so a
 *                                    broken model is not retried per request)
 *   unhealthy                      proceed (a busy server answers /health late)
 *   host not reachable from here   502 (and, before a start or a wait, an ssh host whose
 *                                    link is down: ensure-ready.ts)
 */
import { errorHeadline } from "synapse-host-agent/error-text";
import { errorSaysStartAgain } from "~/shared/failed-advice";
import { modelDisabledMessage } from "./model-disabled";
import { GatewayError } from "./openai-error";
import type { GatewayModel } from "./fleet-port";

export type ReadinessStep = { kind: "proceed" } | { kind: "start" } | { kind: "wait" } | { kind: "refuse"; error: GatewayError };

/** Retry-After for states with no known end (failed). Seconds. */
export const RETRY_UNKNOWN_S = 30;

/**
 * How long after its state was last written an exited model with auto-restart on and no restart planned is
 * waited for (ms). A restart's own start keeps its due time until `starting` (or its failure) is recorded
 * (fleet operations.ts), so the gap it once left between them is gone; one short gap remains: a restart's
 * start whose process fails while loading is recorded `exited` from the agent's event a few ms before the
 * start's outcome brings the restart policy's decision (the next restart, or `failed`). Left so for longer,
 * nothing is restarting it: auto-restart was off at its crash and turned on since, or the state is an older
 * release's (which cleared the due time before the start, and died before the start was recorded). Such a
 * model is `exited` for good, answered at once, not after the readiness deadline (120 s by default).
 */
export const RESTART_GAP_WAIT_MS = 10_000;

function reason(m: GatewayModel): string {
  const first = errorHeadline(m.lastError);
  return first ? `: ${first}` : "";
}

/**
 * What to do about a failed model, unless its error already says it (a held port's advice ends "then start it
 * again"). An on-demand model is started by requests: a saved change of its settings lets the next one try.
 */
function failedAdvice(m: GatewayModel): string {
  if (errorSaysStartAgain(m.lastError)) return "";
  return m.loadPolicy === "on-demand" ? "; fix its settings (a saved change lets the next request try again) or start it from the dashboard" : "; fix it and start it again from the dashboard";
}

export function readinessStep(m: GatewayModel, nowMs: number): ReadinessStep {
  if (!m.enabled) {
    return { kind: "refuse", error: new GatewayError(409, "conflict_error", "model_disabled", modelDisabledMessage(m.name)) };
  }
  if (m.upstream === null) {
    return { kind: "refuse", error: new GatewayError(502, "server_error", "host_unreachable", m.unreachableWhy ?? `model ${JSON.stringify(m.name)}: its host ${m.host} is not reachable from the gateway`) };
  }
  switch (m.state) {
    case "ready":
    // Unhealthy: its /health failed or was slow (a busy server answers health checks late);
    // the process is there, so the request goes on and a real failure comes back as 502.
    case "unhealthy":
      return { kind: "proceed" };
    case "stopping":
      // Stopped by a person: refused now, as it will be once stopped (llama-server may take its whole stop grace).
      if (m.desired === "stopped" && m.loadPolicy === "always") return { kind: "refuse", error: stoppedAlways(m) };
      return { kind: "wait" };
    case "starting":
      return { kind: "wait" };
    case "exited":
      if (m.nextRestartAt !== null && m.desired === "running") {
        // Its turn has come: the start is under way (or resumed by the reconcile loop at its next pass).
        if (m.nextRestartAt <= nowMs) return { kind: "wait" };
        const s = Math.max(1, Math.ceil((m.nextRestartAt - nowMs) / 1000));
        return { kind: "refuse", error: new GatewayError(503, "service_unavailable", "model_restarting", `model ${JSON.stringify(m.name)} crashed and restarts in ${s} s${reason(m)}`, { retryAfterS: s }) };
      }
      if (m.desired === "running" && m.autoRestart && m.stateWrittenAt !== null && nowMs - m.stateWrittenAt < RESTART_GAP_WAIT_MS) return { kind: "wait" };
      break;
    case "failed":
      // Only for a start it is not already waiting on (a restart after a crash is the fleet's to make).
      if (m.loadPolicy === "on-demand" && m.changedSinceFailure && m.nextRestartAt === null) return { kind: "start" };
      return {
        kind: "refuse",
        error: new GatewayError(503, "service_unavailable", "model_failed", `model ${JSON.stringify(m.name)} failed${reason(m)}${failedAdvice(m)}`, m.nextRestartAt !== null ? { retryAfterS: Math.max(1, (m.nextRestartAt - nowMs) / 1000) } : { retryAfterS: RETRY_UNKNOWN_S, shouldRetry: false }),
      };
  }
  // stopped (or exited with nothing pending)
  if (m.desired === "running") return m.state === "exited" ? { kind: "refuse", error: new GatewayError(503, "service_unavailable", "model_failed", `model ${JSON.stringify(m.name)} exited${reason(m)}; ${exitedAdvice(m)}`, { retryAfterS: RETRY_UNKNOWN_S, shouldRetry: false }) } : { kind: "wait" };
  if (m.loadPolicy === "on-demand") return { kind: "start" };
  return { kind: "refuse", error: stoppedAlways(m) };
}

/**
 * Why a crashed model wanted running is not restarted, and what to do: with auto-restart off nothing restarts it;
 * with it on, its crash came while it was off (turned on since), or no restart could be planned (the app
 * restarted meanwhile): a start by hand either way.
 */
function exitedAdvice(m: GatewayModel): string {
  const why = m.autoRestart ? "no restart is planned for it" : "the app does not restart it (auto-restart is off: Settings, Restart crashed servers)";
  return `${why}: start it with its Start button in the dashboard or \`npm run synapse -- start ${m.name}\``;
}

/** 409 for a model with load policy `always` that a person stopped: how to start it. */
function stoppedAlways(m: GatewayModel): GatewayError {
  return new GatewayError(
    409,
    "conflict_error",
    "model_stopped",
    `model ${JSON.stringify(m.name)} is stopped (load policy "always": it is not started on request); start it with its Start button in the dashboard, \`npm run synapse -- start ${m.name}\`, START ALL ENABLED, or POST /api/models/servers/start-all`,
  );
}
