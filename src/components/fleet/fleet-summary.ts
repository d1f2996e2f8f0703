/**
 * The line above the fleet table: the last START ALL ENABLED / STOP ALL's progress over the models it
 * covered, or the fleet's totals. Pure (rows in, text out), so what it claims is tested without a browser.
 */
import { displayState } from "~/shared/display-state";
import { hostUnreachable, type LinkView } from "~/shared/host-reach";
import { restartPlanned } from "~/shared/restart-text";

/** What the line reads from a status row. */
export interface SummaryRow {
  modelId: string;
  state: string;
  desired: string | null;
  loadPolicy: string | null;
  enabled: boolean;
  /** A crashed server's planned restart (ISO); null when none is planned. */
  nextRestartAt: string | null;
  /** Its host's link (ServerView.link): while the host is unreachable, `state` is the last known one. */
  link?: LinkView;
}

/** The models a START ALL ENABLED / STOP ALL covers, as the page saw them when it was pressed. */
export interface FleetRun {
  kind: "start" | "stop";
  ids: string[];
}

/**
 * The models START ALL ENABLED starts: the enabled ones with load policy `always` (on-demand models are
 * started by the gateway on their first request; fleet.startAll skips them).
 */
export function startAllIds(rows: readonly SummaryRow[]): string[] {
  return rows.filter((r) => r.enabled && r.loadPolicy !== "on-demand").map((r) => r.modelId);
}

/** Whether STOP ALL has anything to stop: a server not stopped, or one wanted running (a start in flight). */
export function anyRunning(rows: readonly SummaryRow[]): boolean {
  return rows.some((r) => r.state !== "stopped" || r.desired === "running");
}

/**
 * Why STOP ALL cannot be pressed, said beside the greyed-out button (its tooltip and accessible description);
 * null when it can. `rows` undefined: the fleet is still loading.
 */
export function stopAllDisabledReason(rows: readonly SummaryRow[] | undefined): string | null {
  if (!rows) return "Loading the fleet…";
  return anyRunning(rows) ? null : "Nothing is running: no server to stop";
}

/**
 * Rows by what their badge says (display-state.ts), with a crashed server waiting for the restart the app planned
 * counted as `restarting` (its row reads "restart in 3 s"), apart from the crashed ones nothing restarts (`exited`),
 * and a server on an unreachable host as `unreachable` unless last known stopped (it is not known to be ready).
 */
function count(list: readonly SummaryRow[]): Record<string, number> {
  const c: Record<string, number> = {};
  for (const r of list) {
    const shown = restartPlanned(r) ? "restarting" : displayState(r.state, r.desired, r.loadPolicy).key;
    // Last known stopped (or idle): nothing of it ran then, and nothing is claimed of it now.
    const k = hostUnreachable(r.link) && shown !== "stopped" && shown !== "idle" ? "unreachable" : shown;
    c[k] = (c[k] ?? 0) + 1;
  }
  return c;
}

/**
 * "Start all: all 3 ready", "Starting 3 enabled: 1 ready · 2 loading · 0 queued", "3 models · 2 enabled · 1 ready", …
 * A model that crashed and waits for its planned restart is "restarting" (progress, as loading is): "need
 * attention" and "failed" count only what the app will not mend by itself (failed, crashed with no restart
 * planned, unhealthy).
 */
export function fleetSummary(rows: readonly SummaryRow[] | undefined, run: FleetRun | null): string {
  if (!rows) return "Loading…";
  if (run && run.ids.length > 0) {
    const mine = rows.filter((r) => run.ids.includes(r.modelId));
    const c = count(mine);
    const n = mine.length;
    if (run.kind === "start") {
      const ready = c.ready ?? 0;
      const failed = (c.failed ?? 0) + (c.exited ?? 0);
      const loading = c.starting ?? 0;
      const queued = c.queued ?? 0;
      const restarting = c.restarting ?? 0;
      const unreachable = c.unreachable ?? 0;
      // Stopped and not wanted running: refused by its host's memory budget (the row and a toast say why), or
      // stopped meanwhile. Neither is ready, so "all n ready" must not be said.
      const notStarted = (c.stopped ?? 0) + (c.idle ?? 0);
      if (loading + queued + restarting === 0) {
        if (ready === n) return `Start all: all ${n} ready`;
        // Anything else (unhealthy, stopping): not ready either.
        const other = n - ready - failed - notStarted - unreachable;
        return `Start all: ${ready} of ${n} ready${failed ? `, ${failed} failed` : ""}${notStarted ? `, ${notStarted} not started` : ""}${other ? `, ${other} not ready` : ""}${unreachable ? `, ${unreachable} ${onUnreachable(unreachable)}` : ""}`;
      }
      return `Starting ${n} enabled: ${ready} ready · ${loading} loading · ${queued} queued${restarting ? ` · ${restarting} restarting` : ""}${failed ? ` · ${failed} failed` : ""}${unreachable ? ` · ${unreachable} ${onUnreachable(unreachable)}` : ""}`;
    }
    // A crashed one is not running, its restart planned or not (the stop cancels the restart).
    const stopped = (c.stopped ?? 0) + (c.failed ?? 0) + (c.exited ?? 0) + (c.restarting ?? 0);
    // On an unreachable host: its stop is recorded and made when the host is back.
    const pending = c.unreachable ?? 0;
    if (stopped === n) return `Stop all: all ${n} stopped`;
    return `Stopping ${n}: ${stopped} stopped · ${n - stopped - pending} stopping${pending ? ` · ${pending} ${onUnreachable(pending)}, stopped when ${pending === 1 ? "it is" : "they are"} back` : ""}`;
  }
  const c = count(rows);
  const enabled = rows.filter((r) => r.enabled).length;
  const restarting = c.restarting ?? 0;
  const unreachable = c.unreachable ?? 0;
  const bad = (c.failed ?? 0) + (c.exited ?? 0) + (c.unhealthy ?? 0);
  return `${rows.length} model${rows.length === 1 ? "" : "s"} · ${enabled} enabled · ${c.ready ?? 0} ready${restarting ? ` · ${restarting} restarting` : ""}${unreachable ? ` · ${unreachable} ${onUnreachable(unreachable)}` : ""}${bad ? ` · ${bad} need attention` : ""}`;
}

/** "on an unreachable host" / "on unreachable hosts": state unknown (shared/host-reach.ts). */
function onUnreachable(n: number): string {
  return n === 1 ? "on an unreachable host" : "on unreachable hosts";
}
