/**
 * What happens after a server crashes: restart it after an exponential
 * backoff (about 1 s, 2 s, 4 s … capped at 30 s), unless it has crashed too
 * often in a sliding window (5 in 10 minutes), in which case it is `failed`
 * and left alone until someone starts it again (which clears the window).
 *
 * Pure: the caller keeps the crash history (ServerState.recentCrashes) and
 * the clock; this only decides.
 */

export interface RestartPolicy {
  /** Delay before the restart after the first crash in the window. */
  baseDelayMs: number;
  /** Longest delay between restarts. */
  maxDelayMs: number;
  /** This many crashes inside the window ends in `failed`. */
  maxCrashes: number;
  windowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  baseDelayMs: 1000,
  maxDelayMs: 30_000,
  maxCrashes: 5,
  windowMs: 10 * 60_000,
};

export type CrashDecision =
  | { action: "restart"; delayMs: number; /** Crash times kept for the next decision (this one included). */ recentCrashes: number[]; crashesInWindow: number }
  | { action: "fail"; reason: string; recentCrashes: number[]; crashesInWindow: number };

/** Crash times (epoch ms) still inside the window at `now`, oldest first. */
export function crashesInWindow(recentCrashes: readonly number[], now: number, policy: RestartPolicy = DEFAULT_RESTART_POLICY): number[] {
  return recentCrashes.filter((t) => Number.isFinite(t) && t > now - policy.windowMs && t <= now).sort((a, b) => a - b);
}

/** Backoff before restart number `n` within the window (1-based): base · 2^(n−1), capped. */
export function backoffDelay(n: number, policy: RestartPolicy = DEFAULT_RESTART_POLICY): number {
  const exp = Math.min(Math.max(n - 1, 0), 30);
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** exp);
}

/** The window in words: "10 minutes", "1 minute", "30 s". */
export function windowText(policy: RestartPolicy = DEFAULT_RESTART_POLICY): string {
  const minutes = Math.round(policy.windowMs / 60_000);
  return minutes >= 1 ? `${minutes} minute${minutes === 1 ? "" : "s"}` : `${Math.round(policy.windowMs / 1000)} s`;
}

/**
 * What a restart after crash `n` of the window says of the policy: "restart 2 of at most 4 within 10 minutes"
 * (the crash that would make maxCrashes is not restarted).
 */
export function restartCountText(n: number, policy: RestartPolicy = DEFAULT_RESTART_POLICY): string {
  return `restart ${n} of at most ${policy.maxCrashes - 1} within ${windowText(policy)}`;
}

/** A crash happened at `now`: restart after a delay, or give up. */
export function decideAfterCrash(recentCrashes: readonly number[], now: number, policy: RestartPolicy = DEFAULT_RESTART_POLICY): CrashDecision {
  const kept = [...crashesInWindow(recentCrashes, now, policy), now];
  const n = kept.length;
  if (n >= policy.maxCrashes) {
    const window = windowText(policy);
    return {
      action: "fail",
      reason: `crashed ${n} times within ${window}; not restarting it again until it is started by hand`,
      recentCrashes: kept,
      crashesInWindow: n,
    };
  }
  return { action: "restart", delayMs: backoffDelay(n, policy), recentCrashes: kept, crashesInWindow: n };
}

/** ServerState.recentCrashes (JSON text of ISO times) → epoch ms; unreadable text counts as no crashes. */
export function parseRecentCrashes(text: string | null | undefined): number[] {
  if (!text) return [];
  try {
    const v: unknown = JSON.parse(text);
    if (!Array.isArray(v)) return [];
    return v.map((x) => (typeof x === "string" ? Date.parse(x) : typeof x === "number" ? x : Number.NaN)).filter((t) => Number.isFinite(t));
  } catch {
    return [];
  }
}

export function formatRecentCrashes(times: readonly number[]): string {
  return JSON.stringify(times.map((t) => new Date(t).toISOString()));
}

/**
 * A scheduled restart's due time as a stop that cancelled it says it (its event, the CLI, the dashboard):
 * "due in 2.4 s", or "due now" once that time had come or was under a tenth of a second off (not "due in 0.0 s").
 * `dueInMs`: ms from the stop to the due time.
 */
export function dueText(dueInMs: number): string {
  return dueInMs >= 100 ? `due in ${(dueInMs / 1000).toFixed(1)} s` : "due now";
}
