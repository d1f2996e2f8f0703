/**
 * The gateway's callbacks for a model's server stopping (GatewayFleet.onStopping), as both sides of the fleet
 * keep them: the fleet adapter on the main thread (fleet-adapter.ts, told by the fleet's state events) and the
 * worker's remote fleet (remote-fleet.ts, told by the main thread's `stopping` message).
 *
 * Each notice goes to every listener, in the order they were added. A listener that throws does not keep the
 * notice from the ones after it: its error goes to `report` and the next one is called. The notice's sender
 * must not see the throw: on the main thread it would end the adapter's subscription to the fleet's events; in
 * the worker, a throw from a port's message handler would end the worker.
 */
import type { ModelStopping } from "./stopping";

/** What a listener's throw is reported as (the `what` given to `report`). */
export const STOPPING_LISTENER_FAILED = "ending the requests of a stopping server failed";

export interface StoppingListeners {
  /** Adds a listener (GatewayFleet.onStopping's shape); returns its removal. Adding the same function twice keeps one. */
  add(cb: (s: ModelStopping) => void): () => void;
  /** Calls every listener with `s`; never throws (see above). */
  notify(s: ModelStopping): void;
}

/**
 * An empty set of stop-notice listeners. `report(what, err)` is called once for each listener that throws, with
 * `what` = STOPPING_LISTENER_FAILED and `err` what it threw (any value, not only an Error); it must not throw
 * itself.
 */
export function createStoppingListeners(report: (what: string, err: unknown) => void): StoppingListeners {
  const listeners = new Set<(s: ModelStopping) => void>();
  return {
    add(cb) {
      listeners.add(cb);
      return () => void listeners.delete(cb);
    },
    notify(s) {
      for (const cb of listeners) {
        try {
          cb(s);
        } catch (err) {
          report(STOPPING_LISTENER_FAILED, err);
        }
      }
    },
  };
}
