/**
 * The app's clock as the CLI estimates it, from the HTTP `Date` header of an answer (RFC 9110: the time
 * the answer was made, whole seconds, truncated). The status view's times (last use, idle unload) are the
 * app's, so `synapse status` counts them from the app's "now", not the CLI machine's: a remote app whose
 * clock is skewed does not shift them.
 */

/** What one request tells of the app's clock: its answer's `Date` header and when (CLI epoch ms) it was sent and received. */
export interface ClockSample {
  date: string | null;
  sentMs: number;
  receivedMs: number;
}

/**
 * The app's clock minus the CLI's, in ms, from one answer. The app made it at some moment in
 * [date, date + 1 s) of its clock, while the CLI's clock was within [sentMs, receivedMs]: when a zero skew
 * fits both, the two clocks agree as far as this can tell, and the skew is 0; else the middle of the span
 * it can be (error: half a second plus half the round trip). 0 when the header is absent or unreadable.
 */
export function appClockSkewMs(sample: ClockSample | null): number {
  if (!sample?.date) return 0;
  const dateMs = Date.parse(sample.date);
  if (!Number.isFinite(dateMs)) return 0;
  const lowest = dateMs - sample.receivedMs;
  const highest = dateMs + 1000 - sample.sentMs;
  if (lowest <= 0 && 0 <= highest) return 0;
  return Math.round((lowest + highest) / 2);
}

/**
 * A fetch for the tRPC link that keeps the clock sample of the last answer it got (`last()`), so a
 * command reads the skew of the call it just made.
 */
export function clockSamplingFetch(base: typeof fetch = fetch, now: () => number = Date.now): { fetch: typeof fetch; last(): ClockSample | null } {
  let last: ClockSample | null = null;
  const sampling = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]): Promise<Response> => {
    const sentMs = now();
    const res = await base(input, init);
    last = { date: res.headers.get("date"), sentMs, receivedMs: now() };
    return res;
  };
  return { fetch: sampling as typeof fetch, last: () => last };
}
