/**
 * Per-model admission: at most `concurrency` requests at the model at once,
 * up to `queueLimit` more waiting in arrival order (FIFO); past that, 429
 * with Retry-After. A waiting request whose client goes away leaves the
 * queue. Limits are read per request, so an edit of the model applies to
 * the next one.
 *
 * Retry-After estimates when a place frees: the queue ahead divided by the
 * concurrency, times the recent mean service time (at least 1 s).
 */
import { GatewayError } from "./openai-error";

export interface AdmissionLimits {
  concurrency: number;
  queueLimit: number;
}

export interface Admission {
  /** Resolves with the function that gives the place back (idempotent); throws GatewayError 429 when the queue is full, 499 when `signal` aborts while queued. */
  acquire(modelId: string, modelName: string, limits: AdmissionLimits, signal: AbortSignal): Promise<() => void>;
  /** A place now, when one is free and nobody waits (as `acquire` would give at once); null otherwise. */
  tryAcquire(modelId: string, limits: AdmissionLimits): (() => void) | null;
  /** Requests running and waiting for a model. */
  counts(modelId: string): { running: number; queued: number };
}

interface Waiter {
  grant: () => void;
}

interface Lane {
  running: number;
  queue: Waiter[];
  /** Exponential mean of service times (ms). */
  meanMs: number;
}

export function createAdmission(now: () => number = Date.now): Admission {
  const lanes = new Map<string, Lane>();

  function lane(id: string): Lane {
    let l = lanes.get(id);
    if (!l) lanes.set(id, (l = { running: 0, queue: [], meanMs: 1000 }));
    return l;
  }

  function releaser(id: string, l: Lane, limits: AdmissionLimits): () => void {
    const started = now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      l.meanMs = 0.8 * l.meanMs + 0.2 * (now() - started);
      l.running--;
      // Hand the place to the next in line (if the limit still allows), in arrival order.
      while (l.running < Math.max(1, limits.concurrency) && l.queue.length > 0) {
        l.running++;
        l.queue.shift()!.grant();
      }
      if (l.running === 0 && l.queue.length === 0) lanes.delete(id);
    };
  }

  return {
    tryAcquire(modelId, limits) {
      const l = lane(modelId);
      if (l.running < Math.max(1, limits.concurrency) && l.queue.length === 0) {
        l.running++;
        return releaser(modelId, l, limits);
      }
      return null;
    },
    acquire(modelId, modelName, limits, signal) {
      const l = lane(modelId);
      if (l.running < Math.max(1, limits.concurrency) && l.queue.length === 0) {
        l.running++;
        return Promise.resolve(releaser(modelId, l, limits));
      }
      if (l.queue.length >= limits.queueLimit) {
        const waitS = Math.max(1, Math.ceil(((l.queue.length + 1) / Math.max(1, limits.concurrency)) * (l.meanMs / 1000)));
        return Promise.reject(
          new GatewayError(429, "rate_limit_error", "queue_full", `model ${JSON.stringify(modelName)} is busy: ${l.running} request(s) running and ${l.queue.length} waiting (its queue holds ${limits.queueLimit}); try again later`, {
            retryAfterS: waitS,
          }),
        );
      }
      return new Promise<() => void>((resolve, reject) => {
        const waiter: Waiter = {
          grant: () => {
            signal.removeEventListener("abort", onAbort);
            resolve(releaser(modelId, l, limits));
          },
        };
        const onAbort = () => {
          const i = l.queue.indexOf(waiter);
          if (i !== -1) l.queue.splice(i, 1);
          reject(new GatewayError(499, "invalid_request_error", "client_closed", "the client went away while queued"));
        };
        if (signal.aborted) {
          onAbort();
          return;
        }
        signal.addEventListener("abort", onAbort, { once: true });
        l.queue.push(waiter);
      });
    },
    counts(modelId) {
      const l = lanes.get(modelId);
      return { running: l?.running ?? 0, queued: l?.queue.length ?? 0 };
    },
  };
}
