/**
 * The status view: every model's recorded state as the API, CLI and dashboard
 * show it, with the gateway's counters from its ServerEntry (requests in
 * flight, last used, idle unload time), which live in memory only.
 */
import { isAlive, isStopCause } from "synapse-host-agent/server-states";
import type { FleetContext } from "./context";
import type { ServerView } from "./fleet-types";
import { listeningPort, pendingPort } from "./listening-port";
import type { LinkNote } from "./reconcile-loop";
import { hostUnreachable } from "~/shared/host-reach";

/**
 * Every model, by name; `linkNote`: the last link change recorded for a host (its error and when it was lost,
 * while down). A model whose host is unreachable (shared/host-reach.ts) keeps its last known state; its uptime
 * is the one at the moment the link was lost (null when that is not known), not counted on.
 */
export async function statusView(ctx: FleetContext, linkNote: (hostId: string) => Pick<LinkNote, "error" | "lostAt"> | undefined): Promise<ServerView[]> {
  const rows = await ctx.db.model.findMany({ include: { host: true, server: true }, orderBy: [{ name: "asc" }] });
  const at = ctx.now();
  return rows.map((r): ServerView => {
    const s = r.server;
    const state = s?.observed ?? "stopped";
    const alive = isAlive(state);
    const link = ctx.links.status(r.hostId);
    const note = link && link.state !== "connected" ? linkNote(r.hostId) : undefined;
    const linkView = {
      kind: r.host.linkKind,
      state: link?.state ?? null,
      error: link && link.state !== "connected" ? (link.error ?? note?.error ?? null) : null,
      unreachableSince: iso(note?.lostAt),
    };
    const unreachable = hostUnreachable(linkView);
    // Up until the link was lost, as far as this app can tell.
    const upTo = unreachable ? (note?.lostAt ?? null) : at;
    const e = ctx.table.get(r.id);
    return {
      modelId: r.id,
      name: r.name,
      hostId: r.hostId,
      host: r.host.name,
      port: listeningPort(r),
      pendingPort: pendingPort(r),
      enabled: r.enabled,
      loadPolicy: r.loadPolicy,
      desired: s?.desired ?? "stopped",
      state,
      pid: alive ? (s?.pid ?? null) : null,
      startedAt: s?.startedAt?.toISOString() ?? null,
      readyAt: s?.readyAt?.toISOString() ?? null,
      stoppedAt: s?.stoppedAt?.toISOString() ?? null,
      uptimeMs: alive && s?.startedAt && upTo !== null ? Math.max(0, upTo - s.startedAt.getTime()) : null,
      restarts: s?.restarts ?? 0,
      nextRestartAt: s?.nextRestartAt?.toISOString() ?? null,
      lastError: s?.lastError ?? null,
      lastExitCode: s?.lastExitCode ?? null,
      lastSignal: s?.lastSignal ?? null,
      cause: !alive && isStopCause(s?.cause) ? s.cause : null,
      gpuBackend: s?.gpuBackend ?? null,
      link: linkView,
      inFlight: e?.inFlight ?? 0,
      lastUsedAt: iso(e?.lastUsedAt),
      idleUnloadAt: iso(e?.idleUnloadAt),
    };
  });
}

function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
