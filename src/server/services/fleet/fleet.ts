/**
 * The fleet: start / stop / restart llama-servers across hosts, and keep
 * them where the user wants them.
 *
 * - Desired state lives in ServerState.desired ("running" | "stopped"); what
 *   the agents report is recorded beside it (observed state, pid, times,
 *   exit code, last error with the log tail, restarts, GPU backend) and in
 *   Event rows.
 * - Decisions per host are serialized (a queue per host): each decision only
 *   issues agent calls and registers them as in-flight operations, so a
 *   2-minute model load never holds the queue; a second start of a model
 *   joins the first one's operation.
 * - A crashed server (agent `exited`, or gone while no one watched) goes
 *   through the restart policy: backoff timers owned here, `failed` after too
 *   many crashes; a user start clears that.
 * - A periodic tick and every link transition to connected ask each agent for
 *   `status` (events missed while an ssh link was down are not replayed) and
 *   drive the host toward the desired state (reconciler.ts). The first status
 *   from a host after the app started adopts live servers as they are.
 * - A host whose link is down only affects its own models: calls fail fast
 *   and the status shows the link state and its error.
 */
import { AgentError, serverStatusSchema, type AgentEvent, type ServerSpec, type ServerStatus } from "synapse-host-agent/protocol";
import type { HostLink, LinkStateChange } from "synapse-host-agent/link";
import { STOP_CAUSE_TEXT, type StopCause } from "synapse-host-agent/server-states";
import type { Host, Model, Prisma, ServerState } from "~/generated/prisma/client";
import type { Db } from "~/server/db/client";
import type { Logger } from "~/server/log/logger";
import { addDiscoveredModels, type DiscoveryReport } from "~/server/services/registry/discover";
import { getSettings, type SettingsView } from "~/server/services/registry/settings";
import { resolveSpec, serverApiKeyOf } from "~/server/services/registry/spec";
import { ServiceError, type ServiceErrorCode } from "../errors";
import type { EventBus, EventInput } from "./events";
import { upsertStateSql, type StateData } from "./state-sql";
import { gpuBackendFromLogLine, mergeGpuBackend } from "./gpu-backend";
import type { LinkPool } from "./links";
import { ALIVE_STATES, planHost, type HostAction, type ModelFacts } from "./reconciler";
import { DEFAULT_RESTART_POLICY, decideAfterCrash, formatRecentCrashes, parseRecentCrashes, type RestartPolicy } from "./restart-policy";

export interface FleetOptions {
  db: Db;
  links: LinkPool;
  events: EventBus;
  log: Logger;
  /** The app's own port (no model may take it; discovery needs it). */
  appPort: number;
  now?: () => number;
  restartPolicy?: Partial<RestartPolicy>;
  /** Reconcile tick; 0 turns the tick off (tests drive it by hand). Default 2000. */
  reconcileIntervalMs?: number;
  /** Deadline of a `status` call. Default 10 s. */
  statusTimeoutMs?: number;
}

/** One model's outcome of a start, stop or restart. */
export interface ServerResult {
  modelId: string;
  name: string;
  host: string;
  port: number;
  state: string;
  pid: number | null;
  error: string | null;
}

export interface ServerView {
  modelId: string;
  name: string;
  hostId: string;
  host: string;
  port: number;
  enabled: boolean;
  /** "always" | "on-demand" (the gateway starts it on its first request). */
  loadPolicy: string;
  desired: string;
  state: string;
  pid: number | null;
  startedAt: string | null;
  readyAt: string | null;
  stoppedAt: string | null;
  uptimeMs: number | null;
  restarts: number;
  nextRestartAt: string | null;
  lastError: string | null;
  lastExitCode: number | null;
  lastSignal: string | null;
  gpuBackend: string | null;
  link: { kind: string; state: string | null; error: string | null };
}

export interface AdoptionReport {
  host: string;
  hostId: string;
  adopted: { modelId: string; name: string; pid: number | null; state: string }[];
  error: string | null;
}

export interface Fleet {
  /** Every enabled model with load policy "always" on every host (on-demand ones start on their first request); hosts in parallel. With wait (default), resolves when each is ready or failed. */
  startAll(options?: { wait?: boolean }): Promise<ServerResult[]>;
  /** Every model that is wanted or running. */
  stopAll(): Promise<ServerResult[]>;
  start(modelId: string, options?: { wait?: boolean }): Promise<ServerResult>;
  /** `cause` (default "requested") names why in the event log, e.g. "idle" when the gateway unloads an on-demand model. */
  stop(modelId: string, options?: { cause?: StopCause }): Promise<ServerResult>;
  restart(modelId: string, options?: { wait?: boolean }): Promise<ServerResult>;
  status(): Promise<ServerView[]>;
  /**
   * A server's last log lines. `seq`: the number of the last line the host
   * sent as a live event before these; live lines with a greater seq are not
   * among them (null from an agent that does not number its lines).
   */
  logs(modelId: string, lines?: number): Promise<{ modelId: string; name: string; lines: string[]; logPath: string | null; seq: number | null }>;
  discover(hostId: string): Promise<DiscoveryReport>;
  /** Asks every host for its servers and adopts the live ones (app start). Waits up to timeoutMs for links to connect. */
  adopt(options?: { timeoutMs?: number }): Promise<AdoptionReport[]>;
  /** One reconcile pass of a host (or every host). */
  reconcile(hostId?: string): Promise<void>;
  /** Stops reacting (timers, tick, crash handling); with stopServers, stops every managed server through its agent. */
  shutdown(options: { stopServers: boolean; deadlineMs?: number }): Promise<ServerResult[]>;
  /** Waits for pending records; after this nothing is written. Idempotent. */
  close(): Promise<void>;
}

type ModelRow = Model & { host: Host; server: ServerState | null };

interface Tracked {
  modelId: string;
  hostId: string;
  name: string;
  /** Loaded from the database on first use. */
  loaded: boolean;
  /** Record writes of this model, in order. */
  chain: Promise<unknown>;
  /** Last recorded: state, the agent's pid (kept after exit), the process's start time. */
  state: string;
  pid: number | null;
  startedAt: string | null;
  backend: string | null;
  op: { kind: "start" | "stop"; promise: Promise<ServerResult> } | null;
  timer: NodeJS.Timeout | null;
}

const RANK: Record<string, number> = { starting: 1, ready: 2, unhealthy: 2, stopping: 3, stopped: 4, exited: 4, failed: 4 };

const AGENT_TO_SERVICE: Record<string, ServiceErrorCode> = {
  BAD_REQUEST: "BAD_REQUEST",
  NOT_FOUND: "NOT_FOUND",
  CONFLICT: "CONFLICT",
  FAILED: "FAILED",
  UNAVAILABLE: "UNAVAILABLE",
  TIMEOUT: "UNAVAILABLE",
  INTERNAL: "INTERNAL",
};

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An agent or link error as the one error type services throw. */
export function toServiceError(err: unknown, context?: string): ServiceError {
  if (err instanceof ServiceError) return err;
  const text = context ? `${context}: ${message(err)}` : message(err);
  if (err instanceof AgentError) {
    return new ServiceError(AGENT_TO_SERVICE[err.code] ?? "INTERNAL", text, { cause: err, ...(err.issues ? { issues: err.issues } : {}), ...(err.data !== undefined ? { data: err.data } : {}) });
  }
  return new ServiceError("INTERNAL", text, { cause: err });
}

function statusFromError(err: unknown): ServerStatus | null {
  if (!(err instanceof AgentError) || err.data === undefined) return null;
  const r = serverStatusSchema.safeParse(err.data);
  return r.success ? r.data : null;
}

function describeFailure(status: ServerStatus): string {
  const reason = status.reason ?? status.state;
  return status.logTail.length > 0 ? `${reason}; last log lines:\n${status.logTail.join("\n")}` : reason;
}

function date(iso: string | null | undefined): Date | null {
  if (!iso) return null;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** Rows grouped by host, each group non-empty, in first-seen order. */
function groupByHost<R extends { hostId: string }>(rows: readonly R[]): R[][] {
  const byHost = new Map<string, R[]>();
  for (const r of rows) {
    const group = byHost.get(r.hostId);
    if (group) group.push(r);
    else byHost.set(r.hostId, [r]);
  }
  return [...byHost.values()];
}

export function createFleet(options: FleetOptions): Fleet {
  const { db, links, events, log, appPort } = options;
  const now = options.now ?? Date.now;
  const policy: RestartPolicy = { ...DEFAULT_RESTART_POLICY, ...options.restartPolicy };
  const statusTimeoutMs = options.statusTimeoutMs ?? 10_000;

  const tracked = new Map<string, Tracked>();
  const hostQueues = new Map<string, Promise<unknown>>();
  /** name → modelId per host, for agent events (which name servers by id = model name). */
  const names = new Map<string, Map<string, string>>();
  const namesRefreshedAt = new Map<string, number>();
  /** Hosts whose agent answered `status` at least once since the fleet started (adoption done). */
  const contacted = new Set<string>();
  /** Hosts with a reconcile queued or running (the tick does not pile them up). */
  const reconciling = new Set<string>();
  /** The desired set last pushed with `apply`, per host and link. */
  const pushed = new Map<string, { link: HostLink; key: string }>();
  const linkNotes = new Map<string, { state: string; error: string | null }>();
  /** Servers the registry does not know, already logged (host/id/pid). */
  const strangers = new Set<string>();
  /** What the first contact with each host adopted. */
  const adoptions = new Map<string, AdoptionReport>();
  let closing = false;
  let closed = false;
  let closePromise: Promise<void> | null = null;

  // ---- small helpers -----------------------------------------------------

  function serial<T>(hostId: string, fn: () => Promise<T>): Promise<T> {
    const prev = hostQueues.get(hostId) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    hostQueues.set(hostId, tail);
    void tail.then(() => {
      if (hostQueues.get(hostId) === tail) hostQueues.delete(hostId);
    });
    return run;
  }

  function track(modelId: string, hostId: string, name: string): Tracked {
    let t = tracked.get(modelId);
    if (!t) {
      t = { modelId, hostId, name, loaded: false, chain: Promise.resolve(), state: "stopped", pid: null, startedAt: null, backend: null, op: null, timer: null };
      tracked.set(modelId, t);
    }
    t.hostId = hostId;
    t.name = name;
    return t;
  }

  /** Runs `fn` after this model's earlier record writes; never rejects the chain. */
  function withModel<T>(t: Tracked, fn: () => Promise<T>): Promise<T> {
    const run = t.chain.then(async () => {
      if (!t.loaded) {
        const row = await db.serverState.findUnique({ where: { modelId: t.modelId } });
        if (!t.loaded) {
          t.loaded = true;
          if (row) {
            t.state = row.observed;
            t.pid = row.pid;
            t.startedAt = row.startedAt?.toISOString() ?? null;
            t.backend = row.gpuBackend;
          }
        }
      }
      return fn();
    });
    t.chain = run.catch((err: unknown) => {
      if (!closed) log.error("recording a server's state failed", { modelId: t.modelId, error: err });
    });
    return run;
  }

  /** Records a server's state, and the event that reports it in the same transaction (batched with others by the bus). */
  async function writeState(t: Tracked, data: StateData, event?: Omit<EventInput, "modelId" | "hostId">): Promise<void> {
    if (closed) return;
    const write = () => upsertStateSql(db, t.modelId, data);
    try {
      if (event) await events.append({ ...event, modelId: t.modelId, hostId: t.hostId }, { with: () => [write()] });
      else await write();
    } catch (err) {
      // The model was deleted meanwhile: nothing to record.
      if ((await db.model.count({ where: { id: t.modelId } })) === 0) return;
      throw err;
    }
  }

  async function loadModel(modelId: string): Promise<ModelRow> {
    const row = await db.model.findUnique({ where: { id: modelId }, include: { host: true, server: true } });
    if (!row) throw new ServiceError("NOT_FOUND", `no model with id ${modelId}`, { issues: [{ path: "modelId", message: `no model with id ${modelId}` }] });
    return row;
  }

  function resultOf(row: Pick<ModelRow, "id" | "name" | "port"> & { host: Pick<Host, "name"> }, state: string, pid: number | null, error: string | null): ServerResult {
    return { modelId: row.id, name: row.name, host: row.host.name, port: row.port, state, pid, error };
  }

  async function modelIdFor(hostId: string, name: string): Promise<string | null> {
    const known = names.get(hostId)?.get(name);
    if (known) return known;
    // Unknown name: refresh this host's names, at most once a second (a stranger's events must not hammer the db).
    const last = namesRefreshedAt.get(hostId) ?? 0;
    if (now() - last < 1000 && names.has(hostId)) return null;
    namesRefreshedAt.set(hostId, now());
    const rows = await db.model.findMany({ where: { hostId }, select: { id: true, name: true } });
    names.set(hostId, new Map(rows.map((r) => [r.name, r.id])));
    return names.get(hostId)!.get(name) ?? null;
  }

  function remember(row: Pick<Model, "id" | "hostId" | "name">): Tracked {
    let m = names.get(row.hostId);
    if (!m) names.set(row.hostId, (m = new Map()));
    m.set(row.name, row.id);
    return track(row.id, row.hostId, row.name);
  }

  function clearTimer(t: Tracked): void {
    if (t.timer) clearTimeout(t.timer);
    t.timer = null;
  }

  // ---- recording what agents report ---------------------------------------

  /**
   * Records a status from the agent. Events arrive in order and always apply;
   * snapshots (call results, `status`) may be older than an event already
   * recorded, so one that would move the same process backwards, or that
   * describes an older process, is ignored.
   */
  function observe(hostId: string, status: ServerStatus, source: "event" | "snapshot", modelId?: string): Promise<void> {
    return (async () => {
      const id = modelId ?? (await modelIdFor(hostId, status.id));
      if (!id) return;
      const t = track(id, hostId, status.id);
      await withModel(t, () => record(t, status, source));
    })();
  }

  async function record(t: Tracked, status: ServerStatus, source: "event" | "snapshot"): Promise<void> {
    if (closed) return;
    const samePid = status.pid !== null && status.pid === t.pid;
    if (source === "snapshot") {
      // Already recorded as ended: a snapshot of the same end is not a second one.
      if (status.state === t.state && !ALIVE_STATES.has(status.state)) return;
      if (samePid && (RANK[status.state] ?? 0) < (RANK[t.state] ?? 0)) return;
      if (!samePid && status.startedAt && t.startedAt && status.startedAt < t.startedAt) return;
      // A "not managed" stopped status (no pid) says nothing new about a server we recorded as gone.
      if (status.pid === null && status.state === "stopped" && !ALIVE_STATES.has(t.state)) return;
    }
    if (status.state === t.state && status.pid === t.pid) return;
    const previous = t.state;
    const newProcess = status.pid !== null && status.pid !== t.pid;
    t.state = status.state;
    t.pid = status.pid;
    if (status.startedAt) t.startedAt = status.startedAt;
    const alive = ALIVE_STATES.has(status.state);
    const at = new Date(now());
    const data: Omit<Prisma.ServerStateUncheckedCreateInput, "modelId"> = {
      observed: status.state,
      pid: alive ? status.pid : null,
      ...(status.port !== null ? { port: status.port } : {}),
    };
    if (newProcess && alive) {
      data.startedAt = date(status.startedAt) ?? at;
      data.readyAt = date(status.readyAt);
      data.stoppedAt = null;
      t.backend = null;
      data.gpuBackend = null;
    }
    let text = `${t.name}: ${status.state}${status.reason ? ` (${status.reason})` : ""}`;
    switch (status.state) {
      case "ready":
        data.readyAt = date(status.readyAt) ?? at;
        // No GPU named in the log by the time it is ready: it runs on the CPU (a later GPU line still wins).
        if (t.backend === null) t.backend = "CPU";
        data.gpuBackend = t.backend;
        break;
      case "stopped":
        data.stoppedAt = at;
        // Stopped on the host, not through this app (stop-metal-servers there): that is what its user
        // wants now, so it is no longer wanted running here either, and not restarted as a crash would be.
        if (source === "event" && ALIVE_STATES.has(previous) && t.op?.kind !== "stop" && !closing) {
          const row = await db.serverState.findUnique({ where: { modelId: t.modelId }, select: { desired: true } });
          if (row?.desired === "running") {
            data.desired = "stopped";
            data.desiredAt = at;
            data.nextRestartAt = null;
            clearTimer(t);
            text = `${t.name}: stopped on its host, outside this app${status.reason ? ` (${status.reason})` : ""}; left stopped until it is started again`;
          }
        }
        break;
      case "exited":
      case "failed":
        data.stoppedAt = at;
        data.lastExitCode = status.exitCode;
        data.lastSignal = status.signal;
        data.lastError = describeFailure(status);
        break;
    }
    if (status.state === "ready" && previous === "unhealthy") text = `${t.name}: ready again`;
    await writeState(t, data, {
      kind: "state",
      state: status.state,
      message: text,
      data: { pid: status.pid, port: status.port, previous, reason: status.reason, exitCode: status.exitCode, signal: status.signal, ...(status.logTail.length && !alive ? { logTail: status.logTail } : {}) },
    });
    if (status.state === "exited") await afterCrash(t, `${status.reason ?? "exited"}`);
  }

  /** A crash (agent `exited`, a restart that failed, a server gone unwatched): restart with backoff, or give up. */
  async function afterCrash(t: Tracked, why: string): Promise<void> {
    if (closing || closed) return;
    const row = await db.serverState.findUnique({ where: { modelId: t.modelId } });
    if (!row || row.desired !== "running") return;
    const settings = await getSettings(db);
    if (!settings.autoRestart) {
      await events.append({ kind: "action", modelId: t.modelId, hostId: t.hostId, message: `${t.name}: not restarted (auto-restart is off)` });
      return;
    }
    const decision = decideAfterCrash(parseRecentCrashes(row.recentCrashes), now(), policy);
    if (decision.action === "restart") {
      const due = new Date(now() + decision.delayMs);
      // A restart that failed while loading left "failed": it is a crash awaiting its restart, not given up.
      const pending = t.state === "failed" ? { observed: "exited" } : {};
      if (t.state === "failed") t.state = "exited";
      await writeState(
        t,
        { recentCrashes: formatRecentCrashes(decision.recentCrashes), nextRestartAt: due, ...pending },
        { kind: "action", message: `${t.name}: ${why}; restarting in ${(decision.delayMs / 1000).toFixed(1)} s (crash ${decision.crashesInWindow} of ${policy.maxCrashes} allowed in the window)`, data: { delayMs: decision.delayMs, crashes: decision.crashesInWindow } },
      );
      scheduleRestart(t, decision.delayMs);
    } else {
      clearTimer(t);
      t.state = "failed";
      await writeState(
        t,
        { observed: "failed", pid: null, recentCrashes: formatRecentCrashes(decision.recentCrashes), nextRestartAt: null, lastError: `${decision.reason}; last: ${row.lastError ?? why}` },
        { kind: "state", state: "failed", message: `${t.name}: failed (${decision.reason})`, data: { crashes: decision.crashesInWindow } },
      );
    }
  }

  function scheduleRestart(t: Tracked, delayMs: number): void {
    clearTimer(t);
    if (closing) return;
    t.timer = setTimeout(() => {
      t.timer = null;
      if (closing) return;
      void serial(t.hostId, () => issueStart(t.modelId, "restart"))
        .then((r) => r.op)
        .catch((err: unknown) => log.warn("scheduled restart could not be issued", { modelId: t.modelId, error: err }));
    }, delayMs);
    t.timer.unref();
  }

  function onLogLine(hostId: string, id: string, line: string, at: string, seq: number | undefined): void {
    const publish = (modelId: string) => {
      events.logLine(modelId, hostId, line, at, seq);
      const seen = gpuBackendFromLogLine(line);
      if (!seen) return;
      const t = tracked.get(modelId);
      if (!t) return;
      const merged = mergeGpuBackend(t.backend, seen);
      if (merged === t.backend) return;
      t.backend = merged;
      void withModel(t, () => writeState(t, { gpuBackend: merged }));
    };
    const known = names.get(hostId)?.get(id);
    if (known) publish(known);
    else void modelIdFor(hostId, id).then((m) => m && publish(m), () => undefined);
  }

  function onAgentEvent(hostId: string, e: AgentEvent): void {
    if (closed) return;
    if (e.kind === "state") void observe(hostId, e.status, "event").catch((err: unknown) => log.error("agent event not recorded", { hostId, error: err }));
    else onLogLine(hostId, e.id, e.line, e.at, e.seq);
  }

  function onLinkState(hostId: string, change: LinkStateChange): void {
    if (closed) return;
    if (change.state === "connected" && !closing) {
      // Events may have been missed while it was down: ask.
      void reconcileHost(hostId);
    }
    if (change.state === "connecting") return;
    const error = change.error?.message ?? null;
    const prev = linkNotes.get(hostId);
    if (prev && prev.state === change.state && prev.error === error) return;
    linkNotes.set(hostId, { state: change.state, error });
    void events
      .append({ kind: "host", hostId, state: change.state, message: `host ${change.host}: link ${change.state}${error ? ` (${error})` : ""}`, data: { previous: change.previous, retryInMs: change.retryInMs ?? null } })
      .catch(() => undefined);
  }

  // ---- decisions (inside the host's queue) ---------------------------------

  async function specsOf(host: Host, rows: Model[], settings: SettingsView): Promise<{ specs: ServerSpec[]; errors: Map<string, string> }> {
    const specs: ServerSpec[] = [];
    const errors = new Map<string, string>();
    for (const m of rows) {
      try {
        specs.push(resolveSpec(m, host, settings, { apiKey: serverApiKeyOf(m) }));
      } catch (err) {
        errors.set(m.id, message(err));
      }
    }
    return { specs, errors };
  }

  /** Pushes the host's desired set (what `start-metal-servers` on the host starts); skipped when unchanged. */
  async function pushDesired(host: Host, link: HostLink, settings?: SettingsView): Promise<void> {
    const rows = await db.model.findMany({ where: { hostId: host.id, server: { desired: "running" } }, orderBy: { name: "asc" } });
    const { specs } = await specsOf(host, rows, settings ?? (await getSettings(db)));
    const key = JSON.stringify(specs);
    const last = pushed.get(host.id);
    if (last && last.link === link && last.key === key) return;
    try {
      await link.call("apply", { specs }, { timeoutMs: statusTimeoutMs });
      pushed.set(host.id, { link, key });
    } catch (err) {
      log.warn("could not push the desired set to the host", { host: host.name, error: err });
    }
  }

  async function hostLink(host: Host): Promise<{ link: HostLink | null; error: string | null }> {
    try {
      return { link: await links.get(host), error: null };
    } catch (err) {
      return { link: null, error: message(err) };
    }
  }

  /**
   * Issues a start (the caller holds the host's queue) and returns the
   * operation without waiting for it. A start already in flight is joined.
   */
  async function issueStart(modelId: string, reason: "user" | "restart" | "reconcile", pre?: { row: ModelRow; link: HostLink | null; linkError: string | null; settings: SettingsView }): Promise<{ op: Promise<ServerResult> }> {
    const row = pre?.row ?? (await loadModel(modelId));
    const t = remember(row);
    if (t.op?.kind === "start") return { op: t.op.promise };
    // Shutdown has sent (or is sending) its stop-all: a start issued now would outlive the app.
    if (closing) return { op: Promise.resolve(resultOf(row, t.state, null, "the fleet is shutting down")) };
    const server = row.server;
    if (reason !== "user" && (server?.desired !== "running" || server.observed === "failed")) {
      return { op: Promise.resolve(resultOf(row, server?.observed ?? "stopped", server?.pid ?? null, null)) };
    }
    const settings = pre?.settings ?? (await getSettings(db));
    let spec: ServerSpec;
    try {
      spec = resolveSpec(row, row.host, settings, { apiKey: serverApiKeyOf(row) });
    } catch (err) {
      const text = message(err);
      await withModel(t, async () => {
        t.state = "failed";
        await writeState(t, { observed: "failed", pid: null, lastError: text }, { kind: "error", state: "failed", message: `${row.name}: cannot start: ${text}` });
      });
      return { op: Promise.resolve(resultOf(row, "failed", null, text)) };
    }
    const { link, error: linkError } = pre ? { link: pre.link, error: pre.linkError } : await hostLink(row.host);
    if (!link) {
      const text = `host ${row.host.name}: ${linkError ?? "no link"}`;
      await withModel(t, () => writeState(t, { lastError: text }));
      return { op: Promise.resolve(resultOf(row, t.state, null, text)) };
    }
    clearTimer(t);
    if (reason === "restart") {
      await withModel(t, async () => {
        if (closed) return;
        const s = await db.serverState.update({ where: { modelId: t.modelId }, data: { restarts: { increment: 1 }, nextRestartAt: null } });
        await events.append({ kind: "action", modelId: t.modelId, hostId: t.hostId, message: `${row.name}: restarting after a crash (restart ${s.restarts})`, data: { restarts: s.restarts } });
      });
    }
    const timeoutMs = spec.readinessDeadlineMs + spec.stopGraceMs + 15_000;
    const op: Promise<ServerResult> = link.call("start", { spec }, { timeoutMs }).then(
      async (status) => {
        await observe(row.hostId, status, "snapshot", row.id);
        return resultOf(row, status.state, status.pid, null);
      },
      async (err: unknown) => {
        const text = message(err);
        const status = statusFromError(err);
        const code = err instanceof AgentError ? err.code : "INTERNAL";
        if (status && code !== "CONFLICT") {
          // Ended while loading (FAILED with its status): a result, not a crash of the fleet.
          await observe(row.hostId, status, "snapshot", row.id);
          if (reason === "restart" && status.state === "failed") await withModel(t, () => afterCrash(t, status.reason ?? "failed to start"));
          return resultOf(row, status.state, status.state === "failed" ? null : status.pid, text);
        }
        if (status && code === "CONFLICT") {
          // Running with an older spec: it keeps running; a restart applies the new settings.
          await observe(row.hostId, status, "snapshot", row.id);
          return resultOf(row, status.state, status.pid, `${text}; restart it to apply the current settings`);
        }
        if (code === "UNAVAILABLE" || code === "TIMEOUT") {
          // The link, not the server: the reconciler starts it once the host is back.
          await withModel(t, () => writeState(t, { lastError: text }));
          return resultOf(row, t.state, t.pid, text);
        }
        await withModel(t, async () => {
          t.state = "failed";
          await writeState(t, { observed: "failed", pid: null, lastError: text }, { kind: "error", state: "failed", message: `${row.name}: cannot start: ${text}` });
          if (reason === "restart") await afterCrash(t, text);
        });
        return resultOf(row, "failed", null, text);
      },
    );
    const entry = { kind: "start" as const, promise: op };
    t.op = entry;
    void op.finally(() => {
      if (t.op === entry) t.op = null;
    });
    return { op };
  }

  async function issueStop(row: ModelRow, link: HostLink | null, linkError: string | null): Promise<{ op: Promise<ServerResult> }> {
    const t = remember(row);
    clearTimer(t);
    if (!link) {
      const text = `host ${row.host.name}: ${linkError ?? "no link"}`;
      return { op: Promise.resolve(resultOf(row, t.state, null, text)) };
    }
    const graceMs = (await getSettings(db)).stopGraceMs;
    const op: Promise<ServerResult> = link.call("stop", { id: row.name }, { timeoutMs: graceMs + 30_000 }).then(
      async (status) => {
        await observe(row.hostId, status, "snapshot", row.id);
        return resultOf(row, status.state, null, null);
      },
      async (err: unknown) => {
        const text = message(err);
        await withModel(t, () => writeState(t, { lastError: text }));
        return resultOf(row, t.state, t.pid, text);
      },
    );
    const entry = { kind: "stop" as const, promise: op };
    t.op = entry;
    void op.finally(() => {
      if (t.op === entry) t.op = null;
    });
    return { op };
  }

  /** A user asked for it to run: wanted, and the crash window starts over. */
  async function wantRunning(row: ModelRow): Promise<void> {
    const t = remember(row);
    clearTimer(t);
    await withModel(t, async () => {
      const clearFailed = t.state === "failed" || t.state === "exited";
      if (clearFailed) t.state = "stopped";
      await writeState(t, { desired: "running", desiredAt: new Date(now()), restarts: 0, recentCrashes: "[]", nextRestartAt: null, ...(clearFailed ? { observed: "stopped" } : {}) });
    });
  }

  /**
   * wantRunning for many models: rows that exist are updated in one
   * transaction (start-all's latency), after each model's pending records.
   */
  async function wantRunningMany(rows: ModelRow[]): Promise<void> {
    const existing = rows.filter((r) => r.server !== null);
    await Promise.all(rows.filter((r) => r.server === null).map(wantRunning));
    if (existing.length === 0) return;
    const ts = existing.map(remember);
    for (const t of ts) clearTimer(t);
    await Promise.all(ts.map((t) => t.chain));
    const ids = existing.map((r) => r.id);
    await db.$transaction([
      db.serverState.updateMany({ where: { modelId: { in: ids }, observed: { in: ["failed", "exited"] } }, data: { observed: "stopped" } }),
      db.serverState.updateMany({ where: { modelId: { in: ids } }, data: { desired: "running", desiredAt: new Date(now()), restarts: 0, recentCrashes: "[]", nextRestartAt: null } }),
    ]);
    for (const t of ts) if (t.state === "failed" || t.state === "exited") t.state = "stopped";
  }

  async function wantStoppedMany(rows: ModelRow[]): Promise<void> {
    const ts = rows.map(remember);
    for (const t of ts) clearTimer(t);
    await Promise.all(ts.map((t) => t.chain));
    await db.serverState.updateMany({ where: { modelId: { in: rows.map((r) => r.id) } }, data: { desired: "stopped", desiredAt: new Date(now()), nextRestartAt: null } });
  }

  /** An action event; appends are ordered by the bus, so nothing waits for it. */
  function action(message: string, extra: Omit<EventInput, "kind" | "message"> = {}): void {
    void events.append({ kind: "action", message, ...extra }).catch(() => undefined);
  }

  /** Starts these models (already marked wanted), grouped by host, hosts in parallel. */
  async function startRows(rows: ModelRow[], wait: boolean): Promise<ServerResult[]> {
    const perHost = await Promise.all(
      groupByHost(rows).map((hostRows) =>
        serial(hostRows[0]!.hostId, async () => {
          const host = hostRows[0]!.host;
          const { link, error } = await hostLink(host);
          const settings = await getSettings(db);
          const ops = await Promise.all(hostRows.map((row) => issueStart(row.id, "user", { row, link, linkError: error, settings }).then((r) => ({ row, op: r.op }))));
          // The desired set (what the host's start-metal-servers starts) is recorded while they load, not before.
          if (link) await pushDesired(host, link, settings);
          return ops;
        }),
      ),
    );
    const issued = perHost.flat();
    if (wait) return Promise.all(issued.map((i) => i.op));
    // Not waiting: report what is known now (a start issued is "starting").
    return issued.map(({ row }) => {
      const t = tracked.get(row.id)!;
      const state = ALIVE_STATES.has(t.state) ? t.state : t.op?.kind === "start" ? "starting" : t.state;
      return resultOf(row, state, ALIVE_STATES.has(t.state) ? t.pid : null, null);
    });
  }

  async function stopRows(rows: ModelRow[]): Promise<ServerResult[]> {
    const perHost = await Promise.all(
      groupByHost(rows).map((hostRows) =>
        serial(hostRows[0]!.hostId, async () => {
          const host = hostRows[0]!.host;
          const { link, error } = await hostLink(host);
          const ops = await Promise.all(hostRows.map((row) => issueStop(row, link, error)));
          if (link) await pushDesired(host, link);
          return ops;
        }),
      ),
    );
    return Promise.all(perHost.flat().map((i) => i.op));
  }

  // ---- reconcile -----------------------------------------------------------

  function reconcileHost(hostId: string): Promise<void> {
    reconciling.add(hostId);
    return serial(hostId, () => reconcileLocked(hostId))
      .then(() => undefined)
      .catch((err: unknown) => log.warn("reconcile failed", { hostId, error: err }))
      .finally(() => reconciling.delete(hostId));
  }

  /** Returns why the host could not be reconciled, or null. */
  async function reconcileLocked(hostId: string): Promise<string | null> {
    if (closing) return "the fleet is shutting down";
    const host = await db.host.findUnique({ where: { id: hostId } });
    if (!host) {
      await links.remove(hostId);
      return "host deleted";
    }
    const { link, error } = await hostLink(host);
    if (!link || link.state !== "connected") return error ?? `link ${link?.state ?? "not open"}`;
    let statuses: ServerStatus[];
    try {
      statuses = await link.call("status", {}, { timeoutMs: statusTimeoutMs });
    } catch (err) {
      log.warn("status call failed", { host: host.name, error: err });
      return message(err);
    }
    const rows = await db.model.findMany({ where: { hostId }, include: { host: true, server: true }, orderBy: { name: "asc" } });
    for (const r of rows) remember(r);
    const byName = new Map(rows.map((r) => [r.name, r]));
    // What the agent says now, first; then decide on fresh records.
    await Promise.all(statuses.map((s) => (byName.has(s.id) ? observe(hostId, s, "snapshot", byName.get(s.id)!.id) : Promise.resolve())));
    const firstContact = !contacted.has(hostId);
    contacted.add(hostId);
    const adoption: AdoptionReport | undefined = firstContact ? { host: host.name, hostId, adopted: [], error: null } : undefined;
    if (adoption) adoptions.set(hostId, adoption);
    const fresh = await db.serverState.findMany({ where: { modelId: { in: rows.map((r) => r.id) } } });
    const stateOf = new Map(fresh.map((s) => [s.modelId, s]));
    const facts: ModelFacts[] = rows.map((r) => {
      const s = stateOf.get(r.id);
      const t = tracked.get(r.id)!;
      return {
        modelId: r.id,
        name: r.name,
        desired: s?.desired === "running" ? "running" : "stopped",
        desiredAt: s?.desiredAt?.getTime() ?? null,
        observed: s?.observed ?? "stopped",
        pid: s?.pid ?? null,
        busy: t.op !== null || t.timer !== null,
        nextRestartAt: s?.nextRestartAt?.getTime() ?? null,
      };
    });
    const actions = planHost(facts, statuses, { firstContact, now: now() });
    const settings = await getSettings(db);
    for (const a of actions) await apply(a, host, link, byName, rows, settings, adoption);
    await pushDesired(host, link, settings);
    return null;
  }

  async function apply(a: HostAction, host: Host, link: HostLink, byName: Map<string, ModelRow>, rows: ModelRow[], settings: SettingsView, adoption?: AdoptionReport): Promise<void> {
    const row = "modelId" in a ? rows.find((r) => r.id === a.modelId) : undefined;
    switch (a.kind) {
      case "adopt": {
        const t = remember(row!);
        await withModel(t, async () => {
          const s = await db.serverState.findUnique({ where: { modelId: t.modelId } });
          await writeState(t, { desired: "running", ...(s?.desired === "running" ? {} : { desiredAt: new Date(now()) }) }, { kind: "action", message: `${t.name}: re-adopted (pid ${a.status.pid}, ${a.status.state}); not restarted`, data: { pid: a.status.pid, previousDesired: s?.desired ?? null } });
        });
        adoption?.adopted.push({ modelId: t.modelId, name: t.name, pid: a.status.pid, state: a.status.state });
        // Adopted servers' early log lines are gone: look for the GPU backend in the log file.
        if (t.backend === null || t.backend === "CPU") void detectBackendFromLog(t, link);
        return;
      }
      case "start":
        void (await issueStart(a.modelId, "reconcile", { row: row!, link, linkError: null, settings })).op;
        return;
      case "stop":
        void (await issueStop(row!, link, null)).op;
        return;
      case "lost": {
        const t = remember(row!);
        await withModel(t, async () => {
          const why = `pid ${a.pid ?? "?"} ended while no one watched (exit status unknown)`;
          t.state = "exited";
          await writeState(t, { observed: "exited", pid: null, stoppedAt: new Date(now()), lastError: why, lastExitCode: null, lastSignal: null }, { kind: "state", state: "exited", message: `${t.name}: exited (${why})`, data: { pid: a.pid } });
          await afterCrash(t, why);
        });
        return;
      }
      case "resumeRestart":
        scheduleRestart(remember(row!), a.delayMs);
        return;
      case "hostStopped": {
        // Stopped on the host while this app was away, after it was last asked to run: the user's latest word.
        const t = remember(row!);
        clearTimer(t);
        await withModel(t, async () => {
          t.state = "stopped";
          const at = date(a.at) ?? new Date(now());
          await writeState(
            t,
            { desired: "stopped", desiredAt: at, observed: "stopped", pid: null, nextRestartAt: null },
            { kind: "action", message: `${t.name}: stopped on its host while this app was away (${a.reason ?? `at ${a.at}`}); left stopped until it is started again`, data: { hostStoppedAt: a.at } },
          );
        });
        return;
      }
      case "unknown": {
        const key = `${host.id}/${a.status.id}/${a.status.pid}`;
        if (!byName.has(a.status.id) && !strangers.has(key)) {
          strangers.add(key);
          log.info("the host runs a server the registry does not know; left alone", { host: host.name, id: a.status.id, pid: a.status.pid, port: a.status.port });
        }
        return;
      }
    }
  }

  async function detectBackendFromLog(t: Tracked, link: HostLink): Promise<void> {
    try {
      const r = await link.call("logs", { id: t.name, lines: 2000 }, { timeoutMs: statusTimeoutMs });
      let backend: string | null = t.backend;
      for (const line of r.lines) backend = mergeGpuBackend(backend, gpuBackendFromLogLine(line));
      if (backend === null && ALIVE_STATES.has(t.state)) backend = "CPU";
      if (backend !== t.backend) {
        t.backend = backend;
        await withModel(t, () => writeState(t, { gpuBackend: backend }));
      }
    } catch {
      // The log may be gone (rotated, deleted): the backend stays unknown.
    }
  }

  // ---- the tick --------------------------------------------------------------

  let tick: NodeJS.Timeout | null = null;
  const interval = options.reconcileIntervalMs ?? 2000;
  if (interval > 0) {
    tick = setInterval(() => {
      if (closing) return;
      void db.host
        .findMany({ select: { id: true } })
        .then((hosts) => {
          for (const h of hosts) if (!reconciling.has(h.id)) void reconcileHost(h.id);
        })
        .catch((err: unknown) => log.warn("reconcile tick failed", { error: err }));
    }, interval);
    tick.unref();
  }

  const offState = links.onState(onLinkState);
  const offEvent = links.onEvent(onAgentEvent);

  // ---- public API --------------------------------------------------------------

  function assertOpen(): void {
    if (closing) throw new ServiceError("UNAVAILABLE", "the fleet is shutting down");
  }

  const fleet: Fleet = {
    async startAll(opts = {}) {
      assertOpen();
      // On-demand models are started by the gateway when a request names them.
      const rows = await db.model.findMany({ where: { enabled: true, loadPolicy: "always" }, include: { host: true, server: true }, orderBy: { name: "asc" } });
      await wantRunningMany(rows);
      if (rows.length > 0) action(`start all: ${rows.length} enabled model(s)`, { data: { models: rows.map((r) => r.name) } });
      return startRows(rows, opts.wait ?? true);
    },

    async stopAll() {
      assertOpen();
      const rows = await db.model.findMany({
        where: { server: { OR: [{ desired: "running" }, { observed: { in: [...ALIVE_STATES] } }] } },
        include: { host: true, server: true },
        orderBy: { name: "asc" },
      });
      await wantStoppedMany(rows);
      if (rows.length > 0) action(`stop all: ${rows.length} model(s)`, { data: { models: rows.map((r) => r.name) } });
      return stopRows(rows);
    },

    async start(modelId, opts = {}) {
      assertOpen();
      const row = await loadModel(modelId);
      await wantRunning(row);
      action(`${row.name}: start requested`, { modelId, hostId: row.hostId });
      const [result] = await startRows([row], opts.wait ?? true);
      return result!;
    },

    async stop(modelId, opts = {}) {
      assertOpen();
      const row = await loadModel(modelId);
      await wantStoppedMany([row]);
      const cause = opts.cause ?? "requested";
      action(cause === "requested" ? `${row.name}: stop requested` : `${row.name}: ${STOP_CAUSE_TEXT[cause]}`, { modelId, hostId: row.hostId, data: { cause } });
      const [result] = await stopRows([row]);
      return result!;
    },

    async restart(modelId, opts = {}) {
      assertOpen();
      const row = await loadModel(modelId);
      await wantRunning(row);
      action(`${row.name}: restart requested`, { modelId, hostId: row.hostId });
      const stopped = await stopRows([row]);
      if (stopped[0]?.error && ALIVE_STATES.has(stopped[0].state)) return stopped[0];
      const [result] = await startRows([row], opts.wait ?? true);
      return result!;
    },

    async status() {
      const rows = await db.model.findMany({ include: { host: true, server: true }, orderBy: [{ name: "asc" }] });
      const at = now();
      return rows.map((r): ServerView => {
        const s = r.server;
        const state = s?.observed ?? "stopped";
        const alive = ALIVE_STATES.has(state);
        const link = links.status(r.hostId);
        const note = linkNotes.get(r.hostId);
        return {
          modelId: r.id,
          name: r.name,
          hostId: r.hostId,
          host: r.host.name,
          port: r.port,
          enabled: r.enabled,
          loadPolicy: r.loadPolicy,
          desired: s?.desired ?? "stopped",
          state,
          pid: alive ? (s?.pid ?? null) : null,
          startedAt: s?.startedAt?.toISOString() ?? null,
          readyAt: s?.readyAt?.toISOString() ?? null,
          stoppedAt: s?.stoppedAt?.toISOString() ?? null,
          uptimeMs: alive && s?.startedAt ? Math.max(0, at - s.startedAt.getTime()) : null,
          restarts: s?.restarts ?? 0,
          nextRestartAt: s?.nextRestartAt?.toISOString() ?? null,
          lastError: s?.lastError ?? null,
          lastExitCode: s?.lastExitCode ?? null,
          lastSignal: s?.lastSignal ?? null,
          gpuBackend: s?.gpuBackend ?? null,
          link: {
            kind: r.host.linkKind,
            state: link?.state ?? null,
            error: link && link.state !== "connected" ? (link.error ?? note?.error ?? null) : null,
          },
        };
      });
    },

    async logs(modelId, lines = 200) {
      const row = await loadModel(modelId);
      let link: HostLink;
      try {
        link = await links.get(row.host);
      } catch (err) {
        throw toServiceError(err, `host ${row.host.name}`);
      }
      try {
        const r = await link.call("logs", { id: row.name, lines: Math.max(1, Math.min(5000, Math.floor(lines))) }, { timeoutMs: statusTimeoutMs });
        return { modelId, name: row.name, lines: r.lines, logPath: r.logPath, seq: r.seq ?? null };
      } catch (err) {
        throw toServiceError(err, `logs of ${row.name} on host ${row.host.name}`);
      }
    },

    async discover(hostId) {
      const host = await db.host.findUnique({ where: { id: hostId } });
      if (!host) throw new ServiceError("NOT_FOUND", `no host with id ${hostId}`, { issues: [{ path: "hostId", message: `no host with id ${hostId}` }] });
      let infos;
      try {
        const link = await links.get(host);
        infos = await link.call("discover", {}, { timeoutMs: 120_000 });
      } catch (err) {
        throw toServiceError(err, `discovery on host ${host.name}`);
      }
      const report = await addDiscoveredModels(db, hostId, infos, { appPort });
      await events.append({ kind: "action", hostId, message: `host ${host.name}: discovery added ${report.added.length} model(s)`, data: { added: report.added.map((a) => a.name), skipped: report.skipped.length, errors: report.errors.length } });
      return report;
    },

    async adopt(opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 10_000;
      const hosts = await db.host.findMany({ orderBy: { name: "asc" } });
      return Promise.all(
        hosts.map(async (host): Promise<AdoptionReport> => {
          const { link, error } = await hostLink(host);
          if (!link) return { host: host.name, hostId: host.id, adopted: [], error };
          await waitConnected(link, timeoutMs);
          // A reconcile triggered by the link's "connected" may have got there first: its report is the one.
          const why = contacted.has(host.id) ? null : await serial(host.id, () => reconcileLocked(host.id)).catch((err: unknown) => message(err));
          return adoptions.get(host.id) ?? { host: host.name, hostId: host.id, adopted: [], error: why ?? `link ${link.state}` };
        }),
      );
    },

    async reconcile(hostId) {
      const ids = hostId ? [hostId] : (await db.host.findMany({ select: { id: true } })).map((h) => h.id);
      await Promise.all(ids.map((id) => reconcileHost(id)));
    },

    async shutdown({ stopServers, deadlineMs = 30_000 }) {
      closing = true;
      if (tick) clearInterval(tick);
      tick = null;
      for (const t of tracked.values()) clearTimer(t);
      if (!stopServers) return [];
      const hosts = await db.host.findMany();
      const results: ServerResult[] = [];
      await Promise.all(
        hosts.map(async (host) => {
          const link = links.peek(host.id);
          if (!link || link.state !== "connected") {
            if (link) log.warn("cannot stop the host's servers: its link is down", { host: host.name, state: link.state });
            return;
          }
          try {
            // SIGKILL must come before the deadline, however long the configured grace is.
            const graceMs = Math.max(0, Math.min((await getSettings(db)).stopGraceMs, deadlineMs - 10_000));
            const stopped = await link.call("stopAll", { graceMs }, { timeoutMs: deadlineMs });
            const rows = await db.model.findMany({ where: { hostId: host.id }, include: { host: true, server: true } });
            const byName = new Map(rows.map((r) => [r.name, r]));
            for (const s of stopped) {
              const row = byName.get(s.id);
              if (!row) continue;
              await observe(host.id, s, "snapshot", row.id);
              results.push(resultOf(row, s.state, null, s.state === "stopped" ? null : (s.reason ?? null)));
            }
            // The fleet was stopped on purpose: the next start of the app leaves this host's models stopped
            // (as the seed did), including any that were waiting for a restart.
            const wanted = rows.filter((r) => r.server?.desired === "running");
            await wantStoppedMany(wanted);
            for (const r of wanted) action(`${r.name}: stopped at shutdown`, { modelId: r.id, hostId: host.id });
          } catch (err) {
            log.error("stopping the host's servers at shutdown failed", { host: host.name, error: err });
          }
        }),
      );
      return results;
    },

    close() {
      closePromise ??= (async () => {
        closing = true;
        if (tick) clearInterval(tick);
        tick = null;
        offState();
        offEvent();
        for (const t of tracked.values()) clearTimer(t);
        // Let queued decisions and record writes finish (bounded: calls have deadlines).
        await Promise.race([
          Promise.all([...hostQueues.values(), ...[...tracked.values()].map((t) => t.chain)]),
          new Promise((r) => setTimeout(r, 5000).unref()),
        ]);
        closed = true;
      })();
      return closePromise;
    },
  };
  return fleet;
}

function waitConnected(link: HostLink, timeoutMs: number): Promise<void> {
  if (link.state === "connected" || link.state === "failed" || link.state === "closed") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    timer.unref();
    const off = link.onStateChange((c) => {
      if (c.state === "connected" || c.state === "failed" || c.state === "closed") done();
    });
    function done() {
      clearTimeout(timer);
      off();
      resolve();
    }
  });
}
