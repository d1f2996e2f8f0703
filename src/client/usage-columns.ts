/**
 * The gateway-usage columns of `synapse status` (pure): load policy, requests in flight, last use and the
 * idle unload, as text for a terminal table. Times are relative to `now`, epoch ms of the app's clock (the
 * status view's times are ISO strings from it): `synapse status` passes its own clock plus the skew it
 * read from the answer's Date header (app-clock.ts), so a skewed remote clock does not shift them (left:
 * up to about a second, the header's resolution).
 */
import { isAlive } from "synapse-host-agent/server-states";
// Relative, not "~/…": tsx maps "~" through the tsconfig of the working folder, and the CLI may be run by path from any folder.
import { displayState } from "../shared/display-state";
import { formatDuration } from "../components/fleet/format";

/** What these columns read of a status row (servers.status); absent fields read as none. */
export interface UsageRow {
  state: string;
  desired?: string | null;
  loadPolicy?: string | null;
  enabled?: boolean;
  /** Gateway requests held for it now (queued, waiting for its start, or being answered). */
  inFlight?: number;
  /** ISO; start or end of the last gateway request it served (a refused one does not count); null: none since the app started. */
  lastUsedAt?: string | null;
  /** ISO; when the idle unloader stops it; null: not counting down. */
  idleUnloadAt?: string | null;
}

/** "0s", "42s", "4m 05s", "2h 03m", "3d 04h": the dashboard's spans (formatDuration), compact for a terminal. */
export function formatSpan(ms: number): string {
  return formatDuration(ms, "");
}

/** LAST USED: "12s ago", "4m 05s ago"; "-" when unused since the app started (or unreadable). */
export function lastUsedText(row: UsageRow, now: number): string {
  const at = epoch(row.lastUsedAt);
  return at === null ? "-" : `${formatSpan(now - at)} ago`;
}

/**
 * IDLE UNLOAD: what the idle unloader will do with an on-demand model.
 *   "unloads in 4m 10s"              loaded, no request in flight, counting down
 *   "unloading now"                  its time has come (the unloader is stopping it)
 *   "in use"                         loaded and answering or queueing requests: no countdown until they end
 *   "idle (loads on first request)"  not loaded, enabled: the next request that names it starts it
 *   "-"                              `always` models, and anything else (loading, stopping, crashed, disabled)
 */
export function idleUnloadText(row: UsageRow, now: number): string {
  if (row.loadPolicy !== "on-demand") return "-";
  if (!isAlive(row.state)) {
    // As the dashboard: a stopped on-demand model nobody wants running is idle. A disabled one is not loaded by requests (409).
    return displayState(row.state, row.desired, row.loadPolicy).key === "idle" && row.enabled !== false ? "idle (loads on first request)" : "-";
  }
  const loaded = row.state === "ready" || row.state === "unhealthy";
  if (loaded && (row.inFlight ?? 0) > 0) return "in use";
  const at = epoch(row.idleUnloadAt);
  if (!loaded || at === null) return "-";
  return at > now ? `unloads in ${formatSpan(at - now)}` : "unloading now";
}

function epoch(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : null;
}
