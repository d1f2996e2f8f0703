/**
 * How a crashed server waiting for the restart the app plans reads, for the
 * CLI's STATE column ("exited (restart in 1.4 s)") and the fleet row under
 * its Crashed badge. Plain data, no React (the CLI imports it).
 */

/**
 * "restart in 1.4 s" (or "restart due") for a crashed server waiting for its restart, as of `now` (epoch ms); ""
 * otherwise. `wholeSeconds`: "restart in 2 s", rounded up (a page that redraws each second: tenths would claim a
 * precision its clock does not have).
 */
export function restartText(r: { state: string; nextRestartAt?: string | null }, now: number, wholeSeconds = false): string {
  if (r.state !== "exited" || !r.nextRestartAt) return "";
  const inMs = Date.parse(r.nextRestartAt) - now;
  if (Number.isNaN(inMs)) return "";
  if (inMs <= 0) return "restart due";
  return wholeSeconds ? `restart in ${Math.ceil(inMs / 1000)} s` : `restart in ${(inMs / 1000).toFixed(1)} s`;
}
