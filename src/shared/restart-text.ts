/**
 * How a crashed server waiting for the restart the app plans reads, for the
 * CLI's STATE column ("exited (restart in 1.4 s)") and the fleet row under
 * its Crashed badge. Plain data, no React (the CLI imports it).
 */

/** "restart in 1.4 s" (or "restart due") for a crashed server waiting for its restart, as of `now` (epoch ms); "" otherwise. */
export function restartText(r: { state: string; nextRestartAt?: string | null }, now: number): string {
  if (r.state !== "exited" || !r.nextRestartAt) return "";
  const inMs = Date.parse(r.nextRestartAt) - now;
  return Number.isNaN(inMs) ? "" : inMs > 0 ? `restart in ${(inMs / 1000).toFixed(1)} s` : "restart due";
}
