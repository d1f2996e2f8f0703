/**
 * Runs async work one at a time per key (a host, a server id), in call order,
 * different keys concurrently. A failure of one task does not stop the next.
 * Memory is bounded by the keys with work queued: a key's entry is dropped
 * when its last task settles.
 */
export class KeyedQueue<K = string> {
  private readonly tails = new Map<K, Promise<unknown>>();

  /** Runs `fn` after every task queued earlier under `key`; resolves or rejects with `fn`'s outcome. */
  run<T>(key: K, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }

  /** True when `key` has a task queued or running. */
  busy(key: K): boolean {
    return this.tails.has(key);
  }

  /** Settles when every task queued so far has settled (never rejects). */
  idle(): Promise<void> {
    return Promise.all(this.tails.values()).then(() => undefined);
  }
}
