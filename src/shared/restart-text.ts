/**
 * How a crashed server waiting for the restart the app plans reads, for the
 * CLI's STATE column ("exited (restart in 1.4 s)"), the fleet row under
 * its Crashed badge and the fleet's summary line ("1 restarting"). Plain
 * data, no React (the CLI imports it).
 */

/**
 * Whether a server crashed and waits for the restart the app planned (`exited`, its `nextRestartAt` set): the
 * app restarts it by itself, nothing is asked of the user. A crashed server with none planned (auto-restart off,
 * or the restart policy gave up: then it is `failed`) is not.
 */
export function restartPlanned<R extends { state: string; nextRestartAt?: string | null }>(r: R): r is R & { nextRestartAt: string } {
  return r.state === "exited" && !!r.nextRestartAt;
}

/**
 * "restart in 1.4 s" (or "restart due") for a crashed server waiting for its restart, as of `now` (epoch ms); ""
 * otherwise. `wholeSeconds`: "restart in 2 s", rounded up (a page that redraws each second: tenths would claim a
 * precision its clock does not have).
 */
export function restartText(r: { state: string; nextRestartAt?: string | null }, now: number, wholeSeconds = false): string {
  if (!restartPlanned(r)) return "";
  const inMs = Date.parse(r.nextRestartAt) - now;
  if (Number.isNaN(inMs)) return "";
  if (inMs <= 0) return "restart due";
  return wholeSeconds ? `restart in ${Math.ceil(inMs / 1000)} s` : `restart in ${(inMs / 1000).toFixed(1)} s`;
}
