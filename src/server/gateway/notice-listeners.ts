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
        const done = callListener(cb, notice, what, report);
        if (done) pending.push(done);
      }
      return pending.length === 0 ? Promise.resolve() : Promise.all(pending).then(() => undefined);
    },
  };
}

/** Calls one listener; its throw or rejection goes to `report`. The promise it returned (settled, never rejected), or null. */
function callListener<T>(cb: NoticeListener<T>, notice: T, what: string, report: (what: string, err: unknown) => void): Promise<unknown> | null {
  try {
    const done = cb(notice);
    return done instanceof Promise ? done.catch((err: unknown) => report(what, err)) : null;
  } catch (err) {
    report(what, err);
    return null;
  }
}

/**
 * Listeners for a notice given once (the app's shutdown, Fleet.onShutdown): as createListeners, with two
 * differences. A second `notify` calls no one (its promise resolves at once). A listener added after the notice
 * was given is called with it, in a microtask (its caller has the removal first; removed by then, it is not
 * called): a gateway made once the shutdown began (the worker front.ts starts again after one exited) refuses
 * work as the others do, rather than never hearing of it.
 */
export function createOnceListeners<T>(what: string, report: (what: string, err: unknown) => void): Listeners<T> {
  const listeners = createListeners<T>(what, report);
  const added = new Set<NoticeListener<T>>();
  let given: { notice: T } | null = null;
  return {
    add(cb) {
      const off = listeners.add(cb);
      added.add(cb);
      if (given) {
        const { notice } = given;
        queueMicrotask(() => {
          if (added.has(cb)) void callListener(cb, notice, what, report);
        });
      }
      return () => {
        added.delete(cb);
        off();
      };
    },
    notify(notice) {
      if (given) return Promise.resolve();
      given = { notice };
      return listeners.notify(notice);
    },
  };
}

/** Stop-notice listeners (GatewayFleet.onStopping): createListeners with what = STOPPING_LISTENER_FAILED. */
export function createStoppingListeners(report: (what: string, err: unknown) => void): StoppingListeners {
  return createListeners<ModelStopping>(STOPPING_LISTENER_FAILED, report);
}
