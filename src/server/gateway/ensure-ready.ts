/**
 * Brings a model to `ready` for a request, or says why not (GatewayError).
 *
 * On-demand models are started by the first request that needs them; every
 * request that arrives meanwhile waits on the same start (one start per
 * model at a time). Waiting is bounded by the model's readiness deadline
 * (plus a margin for the stop of a model that was unloading), and by the
 * client: a request whose client went away stops waiting.
 */
import { GatewayError } from "./openai-error";
import type { GatewayFleet, GatewayModel } from "./fleet-port";
import { readinessStep } from "./readiness";

/** Beyond the readiness deadline: an unload that must finish first, the agent's round trips. */
const WAIT_MARGIN_MS = 15_000;
/** How often a waiting request looks again when no event arrives. */
const RECHECK_MS = 500;

export interface ReadyWaiter {
  /** model (already resolved) → the same model, ready; throws GatewayError. */
  ensureReady(model: GatewayModel, signal: AbortSignal): Promise<GatewayModel>;
}

export function createReadyWaiter(fleet: GatewayFleet, now: () => number = Date.now): ReadyWaiter {
  const starts = new Map<string, Promise<unknown>>();

  function startOnce(m: GatewayModel): Promise<unknown> {
    let p = starts.get(m.id);
    if (!p) {
      p = fleet
        .start(m.id)
        .catch(() => undefined) // the outcome is read back from the model's state
        .finally(() => starts.delete(m.id));
      starts.set(m.id, p);
    }
    return p;
  }

  return {
    async ensureReady(first, signal) {
      let m = first;
      const deadline = now() + m.readinessDeadlineMs + WAIT_MARGIN_MS;
      for (let fresh = false; ; fresh = true) {
        if (fresh) {
          const found = (await fleet.models({ fresh: true })).find((x) => x.id === m.id);
          if (!found) throw new GatewayError(404, "not_found_error", "model_not_found", `model ${JSON.stringify(m.name)} was removed from the registry`);
          m = found;
        }
        const step = readinessStep(m, now());
        if (step.kind === "proceed") return m;
        if (step.kind === "refuse") throw step.error;
        if (signal.aborted) throw new GatewayError(499, "invalid_request_error", "client_closed", "the client went away");
        const left = deadline - now();
        if (left <= 0) {
          throw new GatewayError(503, "service_unavailable", "model_not_ready", `model ${JSON.stringify(m.name)} did not become ready within ${Math.round(m.readinessDeadlineMs / 1000)} s (state: ${m.state})`, {
            retryAfterS: 5,
          });
        }
        if (step.kind === "start" || starts.has(m.id)) await Promise.race([startOnce(m), aborted(signal)]);
        else await Promise.race([fleet.changed(Math.min(left, RECHECK_MS)), aborted(signal)]);
      }
    },
  };
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
