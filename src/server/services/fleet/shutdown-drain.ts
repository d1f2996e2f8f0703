/**
 * The app's shutdown waits for the gateway's requests in flight before it
 * stops the servers they run on (or exits): a reply being written when
 * `docker compose down` or Ctrl-C comes is finished, not cut, as a graceful
 * reverse proxy does (nginx's `quit`, Envoy's drain). Bounded: a stream of
 * many minutes does not hold the shutdown past the drain's end; it is then
 * ended with its server, told why.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "~/server/log/logger";

/** How long the app's shutdown waits for requests in flight by default (ms). Docker's default stop timeout is 10 s; the compose file gives the app 75 s. */
export const SHUTDOWN_DRAIN_MS = 10_000;
/** How often the count of requests in flight is read while draining (ms). */
const DRAIN_POLL_MS = 50;

/**
 * Resolves once `inFlight()` (requests in flight over every model) is 0, or at `untilMs` (epoch ms, Date.now's
 * clock), or when `cut` aborts (a second signal: boot.ts), with the count still left. `counted`: settles once
 * every request begun so far is in `inFlight()` (the gateway's worker tells its begins in batches): waited for
 * first, until `untilMs` at most; a count read before it may miss a request being answered, and end the drain at
 * once. `then`: what the shutdown does next, for the log ("stopping the servers", "exiting"). Logs the wait's
 * start (with how to cut it short) and how it ended.
 */
export async function drainRequests(
  inFlight: () => number,
  untilMs: number,
  log: Pick<Logger, "info" | "warn">,
  options: { counted?: Promise<unknown>; cut?: AbortSignal; then?: string } = {},
): Promise<number> {
  const { counted = Promise.resolve(), cut, then = "stopping the servers" } = options;
  const ac = new AbortController();
  await Promise.race([counted, sleep(Math.max(0, untilMs - Date.now()), undefined, { signal: ac.signal }).catch(() => undefined)]);
  ac.abort();
  let left = inFlight();
  if (left === 0) return 0;
  const startedAt = Date.now();
  log.info(`shutting down: waiting up to ${Math.ceil(Math.max(0, untilMs - startedAt) / 1000)} s for the gateway's requests in flight to end before ${then} (the same signal again, 3 s or more after the first, stops the wait)`, {
    requests: left,
    maxMs: Math.max(0, untilMs - startedAt),
  });
  while (left > 0 && Date.now() < untilMs && !cut?.aborted) {
    await sleep(Math.min(DRAIN_POLL_MS, Math.max(1, untilMs - Date.now())));
    left = inFlight();
  }
  const waitedMs = Date.now() - startedAt;
  if (left === 0) log.info("shutting down: the gateway's requests in flight ended", { waitedMs });
  else if (cut?.aborted) log.warn(`shutting down: the wait for requests in flight was cut short by a second signal; ${then} now`, { requests: left, waitedMs });
  else log.warn(`shutting down: requests still in flight at the wait's end; the gateway ends them (503 app_shutting_down), then ${then}`, { requests: left, waitedMs });
  return left;
}
