/**
 * Brings a model to `ready` for a request, or says why not (GatewayError).
 *
 * On-demand models are started by the first request that needs them; every
 * request that arrives meanwhile waits on the same start (one start per
 * model at a time), and goes on as soon as it ends ready. Waiting is bounded by the model's readiness deadline
 * (plus a margin for the stop of a model that was unloading), and by the
 * client: a request whose client went away stops waiting. A model on an ssh
 * host whose link is down is neither started nor waited for: 502
 * host_unreachable with the link's error, at once, once the link was asked to
 * try again (GatewayFleet.linkDown: a host that is back is served).
 */
import { errorHeadline } from "synapse-host-agent/error-text";
import { GatewayError } from "./openai-error";
import type { GatewayFleet, GatewayModel, StartOutcome } from "./fleet-port";
import { readinessStep, RETRY_UNKNOWN_S } from "./readiness";

/** Beyond the readiness deadline: an unload that must finish first, the agent's round trips. */
const WAIT_MARGIN_MS = 15_000;
/** How often a waiting request looks again when no event arrives. */
const RECHECK_MS = 500;

/**
 * How long a request for a model on a host whose link is down waits for the attempt to connect again that it asked
 * for (GatewayFleet.linkDown), in ms: a host that is back answers a handshake within a second; one that drops
 * packets is answered as unreachable after this, not after the link's own connect deadline.
 */
export const LINK_RETRY_WAIT_MS = 5_000;
/**
 * Retry-After of a 502 host_unreachable, in seconds: the least time between two attempts that requests make the
 * link begin ahead of its backoff (host-agent link/types.ts EARLY_RETRY_MIN_GAP_MS), so a retry then is one.
 */
export const HOST_UNREACHABLE_RETRY_S = 5;

/**
 * 502 host_unreachable (README, the gateway's errors) for a model whose host's link is down: the host and the link's
 * error (`error`, which names the host and address), said at once rather than after the readiness deadline.
 */
export function hostUnreachable(m: Pick<GatewayModel, "name" | "host">, error: string, what: "started" | "served"): GatewayError {
  return new GatewayError(
    502,
    "server_error",
    "host_unreachable",
    `model ${JSON.stringify(m.name)} cannot be ${what}: the gateway cannot reach its host ${m.host}: ${errorHeadline(error) || "its link is down"}; a request sent again in ${HOST_UNREACHABLE_RETRY_S} s or later makes the link try again`,
    { retryAfterS: HOST_UNREACHABLE_RETRY_S },
  );
}

/** 404 for a model that was removed from the registry while a request for it waited. */
export function modelRemoved(name: string): GatewayError {
  return new GatewayError(404, "not_found_error", "model_not_found", `model ${JSON.stringify(name)} was removed from the registry`);
}

export interface ReadyWaiter {
  /** model (already resolved) → the same model, ready; throws GatewayError. */
  ensureReady(model: GatewayModel, signal: AbortSignal): Promise<GatewayModel>;
}

export function createReadyWaiter(fleet: GatewayFleet, now: () => number = Date.now): ReadyWaiter {
  const starts = new Map<string, Promise<StartOutcome>>();

  /** One start per model at a time; every request waiting for it gets the same outcome. */
  function startOnce(m: GatewayModel): Promise<StartOutcome> {
    let p = starts.get(m.id);
    if (!p) {
      p = fleet
        .start(m.id)
        .catch((err: unknown): StartOutcome => ({ state: "failed", error: err instanceof Error ? err.message : String(err) }))
        .finally(() => starts.delete(m.id));
      starts.set(m.id, p);
    }
    return p;
  }

  /** A start that did not end ready: every waiter gets 503 now (not after the restarts that may follow). */
  async function failedStart(m: GatewayModel, outcome: StartOutcome): Promise<GatewayError> {
    // The host, not the model: the link's error, for every request that waited for this start.
    if (outcome.unreachable) return hostUnreachable(m, outcome.error ?? "", "started");
    // Memory: the numbers, and a retry once other models may have gone idle and been unloaded. When nothing that
    // may stop by itself would make room (the rest are `always` models), no retry can help: the clients are told
    // not to (OpenAI's retried twice on Retry-After: 30, a minute of waiting for the same answer).
    if (outcome.memoryRefusal) {
      const message = `model ${JSON.stringify(m.name)} cannot be loaded now: ${outcome.memoryRefusal}`;
      return outcome.memoryMayFitLater === false
        ? new GatewayError(503, "service_unavailable", "insufficient_memory", `${message}; retrying will not help: no model that may stop by itself (on demand, or a stop or start under way) would make room`, { shouldRetry: false })
        : new GatewayError(503, "service_unavailable", "insufficient_memory", message, { retryAfterS: RETRY_UNKNOWN_S });
    }
    const fresh = (await fleet.models({ fresh: true }).catch(() => [])).find((x) => x.id === m.id) ?? m;
    const step = readinessStep(fresh, now());
    if (step.kind === "refuse") return step.error;
    const retryS = fresh.nextRestartAt !== null ? Math.max(1, (fresh.nextRestartAt - now()) / 1000) : RETRY_UNKNOWN_S;
    const why = errorHeadline(outcome.error ?? fresh.lastError ?? outcome.state);
    // No restart pending: a person must fix it (the clients are told not to retry).
    return new GatewayError(503, "service_unavailable", "model_start_failed", `model ${JSON.stringify(m.name)} could not be started: ${why}`, fresh.nextRestartAt !== null ? { retryAfterS: retryS } : { retryAfterS: retryS, shouldRetry: false });
  }

  return {
    async ensureReady(first, signal) {
      let m = first;
      const deadline = now() + m.readinessDeadlineMs + WAIT_MARGIN_MS;
      for (let fresh = false, looks = 0; ; fresh = true) {
        if (fresh) {
          // The first look is at this model's row alone (it decides a start: on the way of a cold request); later
          // ones, while it loads, share one read of every model among all the requests waiting (fleet-adapter.ts).
          const found = (await fleet.models({ fresh: true, ...(looks++ === 0 ? { only: m.id } : {}) })).find((x) => x.id === m.id);
          if (!found) throw modelRemoved(m.name);
          m = found;
        }
        const step = readinessStep(m, now());
        if (step.kind === "proceed") return m;
        // A start is a command, and a refusal names the model's state: both are decided on the registry as it
        // is now, not on the snapshot (a model disabled or stopped a moment ago must not be started, and is
        // refused for what it is). A refusal reads the model again here; a start is checked on the row the
        // fleet's start reads (GatewayFleet.start: `skipped` when it no longer calls for one, then decided here
        // on a fresh read). Serving a ready model stays on the snapshot: the hot path reads nothing.
        if (!fresh && step.kind === "refuse") continue;
        if (step.kind === "refuse") throw step.error;
        // A start or a wait on a host whose link is down: no start reaches it and nothing it waits for can come
        // (a trial's request hung for the whole readiness deadline). Said at once; the link is asked to try again
        // first (bounded per host), and a host that is back is served.
        if (m.hostLink === "ssh" && fleet.linkDown) {
          const down = await Promise.race([fleet.linkDown(m.hostId, { timeoutMs: Math.max(0, Math.min(LINK_RETRY_WAIT_MS, deadline - now())) }), aborted(signal)]);
          if (down) throw hostUnreachable(m, down.error, step.kind === "start" ? "started" : "served");
        }
        if (signal.aborted) throw new GatewayError(499, "invalid_request_error", "client_closed", "the client went away");
        const left = deadline - now();
        if (left <= 0) {
          throw new GatewayError(503, "service_unavailable", "model_not_ready", `model ${JSON.stringify(m.name)} did not become ready within ${Math.round(m.readinessDeadlineMs / 1000)} s (state: ${m.state})`, {
            retryAfterS: 5,
          });
        }
        if (step.kind === "start" || starts.has(m.id)) {
          const outcome = await Promise.race([startOnce(m), aborted(signal)]);
          if (outcome?.skipped) continue;
          if (outcome && outcome.state !== "ready") throw await failedStart(m, outcome);
          // The start it waited for ended ready: served on the model as it was known (at its port as the start
          // read it), not read again: a read here was on every cold request's way after its server was ready.
          if (outcome) {
            const upstream = m.upstream && outcome.port !== undefined ? { ...m.upstream, port: outcome.port } : m.upstream;
            return { ...m, upstream, desired: "running", state: "ready", lastError: null, nextRestartAt: null };
          }
        } else await Promise.race([fleet.changed(Math.min(left, RECHECK_MS)), aborted(signal)]);
      }
    },
  };
}

/** Resolves (with undefined) when `signal` aborts, at once if it has: a wait raced against it ends with the client or the app's shutdown. */
export function aborted(signal: AbortSignal): Promise<undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(undefined);
    else signal.addEventListener("abort", () => resolve(undefined), { once: true });
  });
}
