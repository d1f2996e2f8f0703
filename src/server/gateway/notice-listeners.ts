/**
 * Listeners for the fleet's notices to the gateway, as both sides of the fleet keep them: the fleet itself
 * (fleet.ts, Fleet.onShutdown), the fleet adapter on the main thread (fleet-adapter.ts, told of stops by the
 * fleet's state events) and the worker's remote fleet (remote-fleet.ts, told by the main thread's `stopping`
 * and `shutdown` messages). A model's server stopping (GatewayFleet.onStopping) and the app's shutdown
 * (GatewayFleet.onShutdown) are such notices.
 *
 * Each notice goes to every listener, in the order they were added. A listener that throws does not keep the
 * notice from the ones after it: its error goes to `report` and the next one is called. The notice's sender
 * must not see the throw: on the main thread it would end the adapter's subscription to the fleet's events
 * (or the app's shutdown); in the worker, a throw from a port's message handler would end the worker.
 * A listener may return a promise of what it does with the notice (the worker's bridge: the worker's requests
 * counted on the main thread, fleet-host.ts); `notify`'s promise waits for them, a rejection reported as a throw.
 */
import type { ModelStopping } from "./stopping";

/** What a stop-notice listener's throw is reported as (the `what` given to `report`). */
export const STOPPING_LISTENER_FAILED = "ending the requests of a stopping server failed";

/** A listener: what it returns, if a promise, is waited for by `notify`'s promise; anything else is ignored. */
export type NoticeListener<T> = (notice: T) => unknown;

export interface Listeners<T> {
  /** Adds a listener; returns its removal. Adding the same function twice keeps one. */
  add(cb: NoticeListener<T>): () => void;
  /**
   * Calls every listener with `notice`, at once; never throws (see above). The promise resolves once the promises
   * the listeners returned have settled (at once when none did); it never rejects. Senders that need not wait
   * ignore it.
   */
  notify(notice: T): Promise<void>;
}

export type StoppingListeners = Listeners<ModelStopping>;

/**
 * An empty set of listeners. `report(what, err)` is called once for each listener that throws, with `what` as
 * given here and `err` what it threw (any value, not only an Error); it must not throw itself.
 */
export function createListeners<T>(what: string, report: (what: string, err: unknown) => void): Listeners<T> {
  const listeners = new Set<NoticeListener<T>>();
  return {
    add(cb) {
      listeners.add(cb);
      return () => void listeners.delete(cb);
    },
    notify(notice) {
      const pending: Promise<unknown>[] = [];
      for (const cb of [...listeners]) {
        try {
          const done = cb(notice);
          if (done instanceof Promise) pending.push(done.catch((err: unknown) => report(what, err)));
        } catch (err) {
          report(what, err);
        }
      }
      return pending.length === 0 ? Promise.resolve() : Promise.all(pending).then(() => undefined);
    },
  };
}

/** Stop-notice listeners (GatewayFleet.onStopping): createListeners with what = STOPPING_LISTENER_FAILED. */
export function createStoppingListeners(report: (what: string, err: unknown) => void): StoppingListeners {
  return createListeners<ModelStopping>(STOPPING_LISTENER_FAILED, report);
}
