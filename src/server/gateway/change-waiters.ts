/**
 * Waiters for "the next change, or a deadline": what GatewayFleet.changed
 * gives on both sides of the worker bridge (fleet-adapter.ts in the main
 * thread, remote-fleet.ts in the worker). One list; a wait settles once,
 * at the first of `wakeAll()` or its deadline, and leaves the list then.
 */
export interface ChangeWaiters {
  /** Resolves at the next `wakeAll()`, or after `timeoutMs` (ms); never rejects. */
  wait(timeoutMs: number): Promise<void>;
  /** Settles every wait pending now. */
  wakeAll(): void;
  /** Waits pending. */
  readonly size: number;
}

export function createChangeWaiters(): ChangeWaiters {
  let waiters: (() => void)[] = [];
  return {
    wait(timeoutMs) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== wake);
          resolve();
        }, timeoutMs);
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.push(wake);
      });
    },
    wakeAll() {
      const w = waiters;
      waiters = [];
      for (const wake of w) wake();
    },
    get size() {
      return waiters.length;
    },
  };
}
