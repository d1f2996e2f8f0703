/**
 * The status view: every model's recorded state as the API, CLI and dashboard
 * show it, with the gateway's counters from its ServerEntry (requests in
 * flight, last used, idle unload time), which live in memory only.
 */
import { isAlive, isStopCause } from "synapse-host-agent/server-states";
import type { FleetContext } from "./context";
import type { ServerView } from "./fleet-types";
import type { Host } from "~/generated/prisma/client";
import { listeningPort, pendingPort } from "./listening-port";
import type { LinkNote } from "./reconcile-loop";
import { hostUnreachable, type LinkView } from "~/shared/host-reach";

/** What linkNote gives of a host's link (reconcile-loop.ts LinkNote): its last error and when it was lost. */
export type LinkNoteOf = (hostId: string) => Pick<LinkNote, "error" | "lostAt"> | undefined;

/**
 * A host's link as the status view and the memory bars show it (ServerView.link, shared/host-reach.ts LinkView),
 * and when it was lost (epoch ms; null while connected, or not known).
 */
export function hostLinkView(ctx: Pick<FleetContext, "links">, host: Pick<Host, "id" | "linkKind">, linkNote: LinkNoteOf): { view: Required<LinkView>; lostAt: number | null } {
  const link = ctx.links.status(host.id);
  const note = link && link.state !== "connected" ? linkNote(host.id) : undefined;
  return {
    view: {
      kind: host.linkKind,
      state: link?.state ?? null,
      error: link && link.state !== "connected" ? (link.error ?? note?.error ?? null) : null,
      unreachableSince: iso(note?.lostAt),
    },
    lostAt: note?.lostAt ?? null,
  };
}

/**
 * Every model, by name; `linkNote`: the last link change recorded for a host (its error and when it was lost,
 * while down). A model whose host is unreachable (shared/host-reach.ts) keeps its last known state; its uptime
 * is the one at the moment the link was lost (null when that is not known), not counted on.
 */
export async function statusView(ctx: FleetContext, linkNote: LinkNoteOf): Promise<ServerView[]> {
  const rows = await ctx.db.model.findMany({ include: { host: true, server: true }, orderBy: [{ name: "asc" }] });
  const at = ctx.now();
  return rows.map((r): ServerView => {
    const s = r.server;
    const state = s?.observed ?? "stopped";
    const alive = isAlive(state);
    const { view: linkView, lostAt } = hostLinkView(ctx, r.host, linkNote);
    const unreachable = hostUnreachable(linkView);
    // Up until the link was lost, as far as this app can tell.
    const upTo = unreachable ? lostAt : at;
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
      restartPending: e?.pendingRestart ?? false,
      inFlight: e?.inFlight ?? 0,
      lastUsedAt: iso(e?.lastUsedAt),
      idleUnloadAt: iso(e?.idleUnloadAt),
    };
  });
}

function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}
