/**
 * Calls with the same key made while one is in flight share its promise;
 * nothing is kept once it settles, so no answer is older than the call that
 * asked. A start-all checks many specs at once against the same model roots,
 * binary and often the same files: one lookup each, not one per start.
 */
export function singleFlight<A extends unknown[], T>(keyOf: (...args: A) => string, fn: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  const inFlight = new Map<string, Promise<T>>();
  return (...args: A) => {
    const key = keyOf(...args);
    const running = inFlight.get(key);
    if (running) return running;
    const p = fn(...args).finally(() => inFlight.delete(key));
    inFlight.set(key, p);
    return p;
  };
}
