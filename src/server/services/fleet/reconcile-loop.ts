/**
 * The reconcile loop: a periodic tick and every link transition to
 * connected ask each agent for `status` (events missed while an ssh link was
 * down are not replayed), record it, and drive the host toward the desired
 * state (reconciler.ts decides; this carries it out). The first status from
 * a host after the app started adopts live servers as they are. The first
 * contact with each link also reads the agent's `hello`: which features it
 * has (hosts page: "update the agent on HOST").
 */
import type { HostLink, LinkStateChange } from "synapse-host-agent/link";
import { AGENT_FEATURES, agentHas, PROTOCOL_VERSION, type AgentFeature, type HelloResult, type ServerStatus } from "synapse-host-agent/protocol";
import { errorMessage } from "synapse-host-agent/error-text";
import { isAlive } from "synapse-host-agent/server-states";
import type { Host } from "~/generated/prisma/client";
import { getSettings, type SettingsView } from "~/server/services/registry/settings";
import type { ReportApplier } from "./apply-report";
import type { FleetContext } from "./context";
import type { HostMemoryStore } from "./host-memory";
import type { AdoptionReport, AgentNote } from "./fleet-types";
import { gpuBackendFromLogLine, mergeGpuBackend } from "./gpu-backend";
import type { Operations } from "./operations";
import { planHost, type HostAction, type ModelFacts } from "./reconciler";
import type { Restarts } from "./restarts";
import type { ServerEntry } from "./server-entry";
import { processOf } from "./report-decision";
import type { ModelRow } from "./server-table";

/** How often a host whose agent found no llama-server is asked again (readHello). */
const HELLO_RETRY_MS = 5_000;

/** What the app does without each agent feature (the hosts page says it). */
const FEATURE_LOSS: Record<AgentFeature, string> = {
  "stop-cause": "why a server stopped is inferred by the app",
  "check-model-path": "a model's file path is checked when it starts, not when it is saved",
  "owned-readiness": "a server counts as ready when its port answers, even if another process holds the port",
  "complete-stop": "a stop may leave processes the server started still running, holding its port",
  "minimal-env": "servers inherit the agent's whole environment",
  "bounded-logs": "a fast-writing server's log may pass its size cap, and every line is streamed live",
  "model-shape": "models found or saved there get no memory estimate (their shapes are not read)",
  "cache-ram": "a model with its own prompt cache cap (--cache-ram) is refused at start",
  "host-memory": "the host's memory budget is unknown, so starts there are not checked against it (unless its budget is set by hand)",
  "stop-with-cause": "the agent's own log and status say a stop was requested where the app unloaded a model (idle, evicted); the app's events say why",
  "rename-logs": "a renamed model's log stays under its old name on the host, so the app shows only what it wrote since the rename",
  "shutdown-cause": "the agent's own log and status say a stop was requested where the app stopped its servers as it shut down; the app's events say why",
  "log-note": "the app's decision after a crash (the restart and when it comes, or why there is none) is in its events only, not in the server's log on the host",
  "restart-cause": "the agent's own log and status say a stop was requested where the app stopped a server to restart it; the app's events say why",
  "stop-incomplete": "a stop that left a server's port held is told by the wording of the agent's error, not by a field of its report",
  "running-argv": "the model page cannot show the command line a running server was started with, only that it differs from the next start's",
  "port-holder": "a restart onto a port another program holds there stops the running server before the start is refused, and saving such a port gives no warning",
  "log-search": "a log search covers the last 5000 lines of a server's log there, not the whole log",
  "threads-auto": "a model without a thread count runs with --threads -1 (every logical CPU) instead of llama-server's own count (physical or performance cores)",
};

export interface ReconcileLoop {
  /** Queues one pass of the host (skipped while one is queued by the tick); never rejects. */
  reconcileHost(hostId: string): Promise<void>;
  /** One pass, inside the host's queue; returns why the host could not be reconciled, or null. */
  reconcileLocked(hostId: string): Promise<string | null>;
  contacted(hostId: string): boolean;
  adoption(hostId: string): AdoptionReport | undefined;
  agent(hostId: string): AgentNote | null;
  /** The last link state change recorded for the host, with its error, and when the link was lost (epoch ms; null while it is up). */
  linkNote(hostId: string): LinkNote | undefined;
  onLinkState(hostId: string, change: LinkStateChange): void;
  /** Stops the tick. */
  stop(): void;
}

/** A host's link as the reconcile loop last heard of it (onLinkState). */
export interface LinkNote {
  state: string;
  error: string | null;
  /** When the link was lost (epoch ms), kept through its reconnect attempts; null while connected, and while its agent is started again on a connection that stays up. */
  lostAt: number | null;
  /** The change was an agent started again on the same connection (LinkStateChange.agentRestart). */
  agentRestart?: boolean;
}

/**
 * `recordedRestart`: makes a Restart by hand that was recorded while the host could not be reached (ServerEntry
 * pendingRestart), now that it is back (fleet.ts); called from the host's queue, so it must not wait for the queue.
 */
export function createReconcileLoop(ctx: FleetContext, reports: ReportApplier, ops: Operations, restarts: Restarts, memory: HostMemoryStore, intervalMs: number, recordedRestart: (row: ModelRow) => void = () => undefined): ReconcileLoop {
  const { db, links, events, log, table, now, hostQueue } = ctx;
  /** Hosts whose agent answered `status` at least once since the fleet started (adoption done). */
  const contacted = new Set<string>();
  /** Hosts with a reconcile queued or running (the tick does not pile them up). */
  const reconciling = new Set<string>();
  const adoptions = new Map<string, AdoptionReport>();
  const linkNotes = new Map<string, LinkNote>();
  /** Servers the registry does not know, already logged (host/id/pid); bounded. */
  const strangers = new Set<string>();
  /** Each link's hello (a new link, e.g. after the host's connection fields changed, is asked again). */
  const hellos = new WeakMap<HostLink, HelloResult>();
  /** When each link's hello was last asked, and the links with a background re-ask in flight (one at a time). */
  const helloAskedAt = new WeakMap<HostLink, number>();
  const helloRetries = new WeakSet<HostLink>();
  /** Links that connected again since their hello was read (onLinkState): asked again at the next reconcile. */
  const helloStale = new WeakSet<HostLink>();
  const agents = new Map<string, AgentNote>();

  function reconcileHost(hostId: string): Promise<void> {
    reconciling.add(hostId);
    return hostQueue
      .run(hostId, () => reconcileLocked(hostId))
      .then(() => undefined)
      .catch((err: unknown) => log.warn("reconcile failed", { hostId, error: err }))
      .finally(() => reconciling.delete(hostId));
  }

  /**
   * Asks a link's agent `hello` once (awaited: the reconcile needs its features), and again, in the
   * background and at most every HELLO_RETRY_MS, while the agent reports no usable llama-server: the user
   * is expected to fix that with the app running (the notice says to run `npm run llama:build` or set a
   * path), and the hosts page's llama-server line must then name the binary, not the old error.
   */
  async function readHello(host: Host, link: HostLink): Promise<void> {
    const known = hellos.get(link);
    // Connected again since it was read (or before its first read, which is then the read).
    const stale = helloStale.delete(link);
    if (!known) return askHello(host, link, null);
    if (stale) return askHello(host, link, known);
    if (known.llamaServer.error === null || helloRetries.has(link)) return;
    const last = helloAskedAt.get(link) ?? 0;
    if (ctx.now() - last < HELLO_RETRY_MS) return;
    helloRetries.add(link);
    void askHello(host, link, known).finally(() => helloRetries.delete(link));
  }

  async function askHello(host: Host, link: HostLink, known: HelloResult | null): Promise<void> {
    helloAskedAt.set(link, ctx.now());
    try {
      const hello = await link.call("hello", { protocolVersion: PROTOCOL_VERSION }, { timeoutMs: ctx.statusTimeoutMs });
      const before = agents.get(host.id)?.advice ?? null;
      hellos.set(link, hello);
      const missing = AGENT_FEATURES.filter((f) => !agentHas(hello, f));
      const advice = missing.length > 0 ? `update the agent on ${host.name}: it is older than this app and lacks ${missing.map((f) => `${f} (${FEATURE_LOSS[f]})`).join(", ")}` : null;
      const { path: binPath, version, error } = hello.llamaServer;
      agents.set(host.id, { agentVersion: hello.agentVersion, platform: hello.platform, features: hello.features ?? [], missing, advice, llamaServer: { path: binPath, version, error }, modelRoots: hello.modelRoots });
      // Once per agent: again only when the link reached one that lacks other features.
      if (advice && (!known || advice !== before)) log.warn(advice, { host: host.name, agentVersion: hello.agentVersion, missing });
    } catch (err) {
      log.warn("hello failed", { host: host.name, error: err });
    }
  }

  async function reconcileLocked(hostId: string): Promise<string | null> {
    if (ctx.closing) return "the fleet is shutting down";
    const host = await db.host.findUnique({ where: { id: hostId } });
    if (!host) {
      await links.remove(hostId);
      return "host deleted";
    }
    const { link, error } = await ops.hostLink(host);
    if (!link || link.state !== "connected") return error ?? `link ${link?.state ?? "not open"}`;
    await readHello(host, link);
    // Not awaited: the first reading runs `llama-server --list-devices`, which must not hold the host's queue.
    void memory.refresh(host, link);
    let statuses: ServerStatus[];
    try {
      statuses = await link.call("status", {}, { timeoutMs: ctx.statusTimeoutMs });
    } catch (err) {
      log.warn("status call failed", { host: host.name, error: err });
      return errorMessage(err);
    }
    const rows = await db.model.findMany({ where: { hostId }, include: { host: true, server: true }, orderBy: { name: "asc" } });
    for (const r of rows) table.remember(r);
    await clearHostErrors(rows);
    const byName = new Map(rows.map((r) => [r.name, r]));
    // What the agent says now, first; then decide on fresh records.
    await Promise.all(statuses.map((s) => (byName.has(s.id) ? reports.observe(hostId, s, "snapshot", byName.get(s.id)!.id) : Promise.resolve())));
    const firstContact = !contacted.has(hostId);
    contacted.add(hostId);
    const adoption: AdoptionReport | undefined = firstContact ? { host: host.name, hostId, adopted: [], error: null } : undefined;
    if (adoption) adoptions.set(hostId, adoption);
    const fresh = await db.serverState.findMany({ where: { modelId: { in: rows.map((r) => r.id) } } });
    const stateOf = new Map(fresh.map((s) => [s.modelId, s]));
    const facts: ModelFacts[] = rows.map((r) => {
      const s = stateOf.get(r.id);
      return {
        modelId: r.id,
        name: r.name,
        desired: s?.desired === "running" ? "running" : "stopped",
        desiredAt: s?.desiredAt?.getTime() ?? null,
        observed: s?.observed ?? "stopped",
        pid: s?.pid ?? null,
        busy: table.get(r.id)!.busy,
        nextRestartAt: s?.nextRestartAt?.getTime() ?? null,
        restartRecorded: table.get(r.id)!.pendingRestart,
      };
    });
    const actions = planHost(facts, statuses, { firstContact, now: now() });
    const settings = await getSettings(db);
    for (const a of actions) await apply(a, host, link, byName, rows, settings, adoption);
    // A recorded restart of a server the host no longer runs: what this pass did (a start, the crash recorded)
    // makes the fresh process it asked for, or none is wanted now. Not kept to restart a later process.
    for (const f of facts) {
      if (f.restartRecorded && !f.busy && !actions.some((a) => a.kind === "restart" && a.modelId === f.modelId)) table.get(f.modelId)!.pendingRestart = false;
    }
    await ops.pushDesired(host, link, settings);
    return null;
  }

  /**
   * The host answers: a last error that only said it could not be reached (a start sent while the link was down,
   * ServerEntry.hostErrorNoted) is no longer true, and is cleared; the event log keeps it.
   */
  async function clearHostErrors(rows: ModelRow[]): Promise<void> {
    for (const r of rows) {
      const e = table.remember(r);
      const noted = e.hostErrorNoted;
      if (noted === null) continue;
      e.hostErrorNoted = null;
      if (r.server?.lastError !== noted) continue;
      await table.withModel(e, async () => {
        const s = await db.serverState.findUnique({ where: { modelId: e.modelId } });
        if (s?.lastError === noted) await table.writeState(e, { lastError: null });
      });
    }
  }

  async function apply(a: HostAction, host: Host, link: HostLink, byName: Map<string, ModelRow>, rows: ModelRow[], settings: SettingsView, adoption?: AdoptionReport): Promise<void> {
    const row = "modelId" in a ? rows.find((r) => r.id === a.modelId) : undefined;
    switch (a.kind) {
      case "adopt": {
        const e = table.remember(row!);
        const adopted = await table.withModel(e, async () => {
          // Adoption is for servers this app found running, not ones it was told about: once a start or stop
          // was given for the model in this process (a stop overtaking a start whose server the status showed
          // running), that command is the last word, and the next pass holds the server to it.
          if (e.busy || e.desiredSeq !== 0) return false;
          const s = await db.serverState.findUnique({ where: { modelId: e.modelId } });
          await table.writeState(e, { desired: "running", ...(s?.desired === "running" ? {} : { desiredAt: new Date(now()) }) }, { kind: "action", message: `${e.name}: re-adopted (pid ${a.status.pid}, ${a.status.state}); not restarted`, data: { pid: a.status.pid, previousDesired: s?.desired ?? null } });
          return true;
        });
        if (!adopted) return;
        adoption?.adopted.push({ modelId: e.modelId, name: e.name, pid: a.status.pid, state: a.status.state });
        // Adopted servers' early log lines are gone: look for the GPU backend in the log file.
        if (e.backend === null || e.backend === "CPU") void detectBackendFromLog(e, link);
        return;
      }
      case "start":
        void (await ops.issueStart(a.modelId, "reconcile", { row: row!, link, linkError: null, settings })).op;
        return;
      case "restart": {
        // Made outside this pass (its stop and start take the host's queue, which this pass holds).
        const e = table.remember(row!);
        e.pendingRestart = false;
        recordedRestart(row!);
        return;
      }
      case "stop": {
        // A stop that waited for the host keeps its own cause (an idle unload is `idle`, not `requested`).
        const pending = table.remember(row!).pendingStop;
        void (await ops.issueStop(row!, link, null, pending?.cause ?? "requested", pending?.note ?? undefined)).op;
        return;
      }
      case "lost": {
        const e = table.remember(row!);
        await table.withModel(e, async () => {
          const why = `pid ${a.pid ?? "?"} ended while no one watched (exit status unknown)`;
          e.state = "exited";
          e.cause = "crash";
          e.ended = processOf({ pid: a.pid, startedAt: e.startedAt });
          await restarts.afterCrash(e, why, {
            data: { observed: "exited", pid: null, cause: "crash", stoppedAt: new Date(now()), lastError: why, lastExitCode: null, lastSignal: null },
            event: { kind: "state", state: "exited", message: `${e.name}: exited (crashed: ${why})`, data: { pid: a.pid, cause: "crash" } },
          });
        });
        return;
      }
      case "resumeRestart":
        restarts.schedule(table.remember(row!), a.delayMs);
        return;
      case "hostStopped": {
        // Stopped on the host while this app was away, after it was last asked to run: the user's latest word.
        const e = table.remember(row!);
        e.clearRestart();
        await table.withModel(e, async () => {
          e.state = "stopped";
          e.cause = "host-stop";
          const at = new Date(Date.parse(a.at) || now());
          await table.writeState(
            e,
            { desired: "stopped", desiredAt: at, observed: "stopped", pid: null, cause: "host-stop", nextRestartAt: null },
            { kind: "action", message: `${e.name}: stopped on its host while this app was away (${a.reason ?? `at ${a.at}`}); left stopped until it is started again`, data: { hostStoppedAt: a.at, cause: "host-stop" } },
          );
        });
        return;
      }
      case "unknown": {
        const key = `${host.id}/${a.status.id}/${a.status.pid}`;
        if (!byName.has(a.status.id) && !strangers.has(key)) {
          if (strangers.size >= 1000) strangers.clear();
          strangers.add(key);
          log.info("the host runs a server the registry does not know; left alone", { host: host.name, id: a.status.id, pid: a.status.pid, port: a.status.port });
        }
        return;
      }
    }
  }

  async function detectBackendFromLog(e: ServerEntry, link: HostLink): Promise<void> {
    try {
      const r = await link.call("logs", { id: e.name, lines: 2000 }, { timeoutMs: ctx.statusTimeoutMs });
      let backend: string | null = e.backend;
      for (const line of r.lines) backend = mergeGpuBackend(backend, gpuBackendFromLogLine(line));
      if (backend === null && isAlive(e.state)) backend = "CPU";
      if (backend !== e.backend) {
        e.backend = backend;
        await table.withModel(e, () => table.writeState(e, { gpuBackend: backend }));
      }
    } catch {
      // The log may be gone (rotated, deleted): the backend stays unknown.
    }
  }

  function onLinkState(hostId: string, change: LinkStateChange): void {
    if (table.closed) return;
    // Connected again: an ssh session starts the host's agent anew, maybe another release (updated, or rolled
    // back), so its features are read again before the reconcile below, which the host's next commands queue
    // behind; until then a cause or method of the agent before could be sent to one that refuses it.
    if (change.state === "connected") {
      const link = links.peek(hostId);
      if (link) helloStale.add(link);
    }
    // Events may have been missed while it was down: ask.
    if (change.state === "connected" && !ctx.closing) void reconcileHost(hostId);
    // Connecting says nothing new, but for an agent started again on a connection that stays up: that is news
    // (its session ended), and not a lost link (stopping.ts linkLostOf: what runs through it carries on).
    if (change.state === "connecting" && !change.agentRestart) return;
    const error = change.error?.message ?? null;
    const prev = linkNotes.get(hostId);
    if (prev && prev.state === change.state && prev.error === error) return;
    // Lost: from the first change away from connected until it is connected again (its retries keep the time). Not
    // an agent started again on a connection that stays up: the host is reached all along (shared/host-reach.ts).
    const lostAt = change.state === "connected" || change.agentRestart ? null : (prev?.lostAt ?? now());
    linkNotes.set(hostId, { state: change.state, error, lostAt, ...(change.agentRestart ? { agentRestart: true } : {}) });
    // The link's error names the host ("the agent session on host 'mac' ended (…)"); the event names it first.
    const ended = (error ?? "the agent session ended").replace(` on host '${change.host}'`, "");
    void events
      .append({
        kind: "host",
        hostId,
        state: change.state,
        message: change.agentRestart
          ? `host ${change.host}: ${ended}; starting the agent again on the same connection (requests to its models carry on)`
          : change.state === "connected" && prev?.agentRestart
            ? `host ${change.host}: link connected (the agent started again on the same connection answers)`
            : `host ${change.host}: link ${change.state}${error ? ` (${error})` : ""}`,
        data: { previous: change.previous, retryInMs: change.retryInMs ?? null, ...(change.agentRestart ? { agentRestart: true } : {}), ...(change.connectionLost ? { connectionLost: true } : {}) },
      })
      .catch(() => undefined);
  }

  let tick: NodeJS.Timeout | null = null;
  if (intervalMs > 0) {
    tick = setInterval(() => {
      if (ctx.closing) return;
      void db.host
        .findMany({ select: { id: true } })
        .then((hosts) => {
          for (const h of hosts) if (!reconciling.has(h.id)) void reconcileHost(h.id);
        })
        .catch((err: unknown) => log.warn("reconcile tick failed", { error: err }));
    }, intervalMs);
    tick.unref();
  }

  return {
    reconcileHost,
    reconcileLocked,
    contacted: (hostId) => contacted.has(hostId),
    adoption: (hostId) => adoptions.get(hostId),
    agent: (hostId) => agents.get(hostId) ?? null,
    linkNote: (hostId) => linkNotes.get(hostId),
    onLinkState,
    stop() {
      if (tick) clearInterval(tick);
      tick = null;
    },
  };
}
