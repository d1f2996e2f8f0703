/**
 * The fleet: start / stop / restart llama-servers across hosts, and keep
 * them where the user wants them. This file composes the parts, each with
 * one job:
 *
 * - server-table.ts / server-entry.ts: one ServerEntry per model (recorded
 *   state, the operation in flight, timers, the gateway's counters: requests
 *   in flight, last used, idle unload time).
 * - apply-report.ts with report-decision.ts (pure): what agents report,
 *   recorded; a stop on the host honoured; crashes to the restart policy.
 * - restarts.ts: backoff timers, `failed` after too many crashes.
 * - operations.ts with start-outcome.ts: starts and stops issued per host
 *   through a queue, desired state; the last command a user gave wins.
 * - reconcile-loop.ts with reconciler.ts (pure): the tick, adoption at first
 *   contact, the agents' features.
 * - status-view.ts: what the API and dashboard show (with each entry's
 *   gateway counters).
 *
 * Desired state lives in ServerState.desired ("running" | "stopped"); what
 * the agents report is recorded beside it and in Event rows. A host whose
 * link is down only affects its own models: calls fail fast and the status
 * shows the link state and its error.
 */
import type { HostLink } from "synapse-host-agent/link";
import type { ServerStatus } from "synapse-host-agent/protocol";
import { errorHeadline, errorMessage } from "synapse-host-agent/error-text";
import { canBind } from "synapse-host-agent/port";
import { hostPortHolder } from "~/server/services/registry/port-holder";
import { linkWithFeature } from "~/server/services/registry/agent-with-feature";
import { ALIVE_STATES, isAlive } from "synapse-host-agent/server-states";
import { addDiscoveredModels } from "~/server/services/registry/discover";
import { getSettings } from "~/server/services/registry/settings";
import { ServiceError } from "../errors";
import { createReportApplier } from "./apply-report";
import { createContext } from "./context";
import type { AdoptionReport, Fleet, FleetOptions, ServerResult, ShutdownNotice, ShutdownView } from "./fleet-types";
import { drainRequests, SHUTDOWN_DRAIN_MS } from "./shutdown-drain";
import { createOnceListeners } from "~/server/gateway/notice-listeners";
import { agentTakesCause, createOperations, type Operations } from "./operations";
import { createHostMemoryStore } from "./host-memory";
import { createStartPlanner } from "./start-plan";
import { shapeOrWeightsEstimator } from "../memory/model-estimator";
import { createReconcileLoop, type ReconcileLoop } from "./reconcile-loop";
import { createRestarts } from "./restarts";
import { epochMs } from "./server-entry";
import { createLogNotes } from "./log-note";
import { resultOf, type ModelRow } from "./server-table";
import { RESTART_PORT_HELD_ADVICE, toServiceError } from "./start-outcome";
import { startedDisabledMessage } from "~/server/gateway/model-disabled";
import { hostLinkView, statusView } from "./status-view";
import { hostUnreachable } from "~/shared/host-reach";
import { changedSinceFailure } from "./settings-hash";
import { pendingPort } from "./listening-port";

export type { AdoptionReport, AgentNote, Fleet, FleetOptions, ServerResult, ServerView } from "./fleet-types";
export type { ServerEntry } from "./server-entry";
export { toServiceError };

/** The deadline of a whole-log search on a host (ms): the agent reads up to two files of its log cap (10 MiB by default). */
const LOG_SEARCH_TIMEOUT_MS = 30_000;

/** A start or restart of a disabled model that runs (or is starting) says that the gateway still refuses it until it is enabled. */
function noteDisabled(row: ModelRow, result: ServerResult): ServerResult {
  return row.enabled || !isAlive(result.state) ? result : { ...result, disabled: { message: startedDisabledMessage(row.name, result.memory?.verdict === "running") } };
}

/**
 * Whether a model crashed and waits for the restart its restart policy planned: wanted running, recorded exited,
 * a restart due (the entry, the latest report, agreeing when it has one).
 */
function waitsForPlannedRestart(m: ModelRow, e: { state: string } | undefined): m is ModelRow & { server: NonNullable<ModelRow["server"]> & { nextRestartAt: Date } } {
  return m.server?.desired === "running" && m.server.observed === "exited" && m.server.nextRestartAt !== null && (e === undefined || e.state === "exited");
}

export function createFleet(options: FleetOptions): Fleet {
  const ctx = createContext(options);
  const { db, links, events, log, table, hostQueue } = ctx;
  const agentFeatures = (hostId: string) => loop?.agent(hostId)?.features ?? null;
  const noteInLog = createLogNotes(ctx, agentFeatures);
  const restarts = createRestarts(ctx, (e) => hostQueue.run(e.hostId, () => ops.issueStart(e.modelId, "restart")).then(() => undefined), noteInLog);
  const reports = createReportApplier(ctx, restarts);
  const memory = createHostMemoryStore({
    now: ctx.now,
    hasFeature: (hostId) => {
      const a = loop?.agent(hostId);
      return a ? a.features.includes("host-memory") : null;
    },
  });
  const planner = createStartPlanner(ctx, memory, options.estimator ?? shapeOrWeightsEstimator);
  const ops = createOperations(ctx, reports, restarts, planner, agentFeatures, noteInLog);
  const loop: ReconcileLoop = createReconcileLoop(ctx, reports, ops, restarts, memory, options.reconcileIntervalMs ?? 2000, (row) => {
    if (ctx.closing) return;
    // Read again in its turn: the pass's row may be older than the reports it just recorded.
    void inTurn(row.id, () => table.loadModel(row.id))
      .then((fresh) => makeRestart(fresh, {}, true))
      .catch((err: unknown) => log.warn("the restart recorded while the host could not be reached failed", { model: row.name, error: err }));
  });
  const offState = links.onState(loop.onLinkState);
  const offEvent = links.onEvent(reports.onAgentEvent);
  let closePromise: Promise<void> | null = null;

  /**
   * Per model, the turn in which a start, stop or restart reads its row and takes its place in the command
   * order (the entry's desiredSeq): commands take their places in the order they were given, whatever order
   * their reads end in (a stop given 0 ms after a start could read first, and the start then won). Turns
   * hold only that read, never the command's work; a turn that fails does not hold up the next.
   */
  const turns = new Map<string, Promise<unknown>>();
  /** Set while shutdown() waits for the gateway's requests in flight: Fleet.endShutdownWait aborts it. */
  let drainCut: AbortController | null = null;
  /** The shutdown as it goes (Fleet.shutdownState), its request count read when asked; null before it. */
  let shutdownView: Omit<ShutdownView, "requestsInFlight"> | null = null;
  const requestsInFlight = () => [...table.entries()].reduce((n, e) => n + e.inFlight, 0);
  /** Fleet.onShutdown's listeners (the gateway's); one added once the shutdown began is told at once. */
  const shutdownListeners = createOnceListeners<ShutdownNotice>("telling the gateway of the app's shutdown failed", (what, err) => log.warn(what, { error: err }));
  function inTurn<T>(modelId: string, fn: () => Promise<T>): Promise<T> {
    const run = (turns.get(modelId) ?? Promise.resolve()).then(fn);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    turns.set(modelId, settled);
    void settled.then(() => {
      if (turns.get(modelId) === settled) turns.delete(modelId);
    });
    return run;
  }

  /**
   * A request's start that did not reach the host (its link down): no longer wanted running. The request is
   * answered with the link's error (the gateway's 502 host_unreachable), and a start left wanted would read
   * "queued" for as long as the host stays away, then start a model nobody waits for. Its state stays (stopped:
   * an on-demand model reads idle) with the link's error as its last error; the next request tries again.
   */
  async function unwantUnreached(row: ModelRow, result: ServerResult): Promise<void> {
    await ops.wantStoppedMany([row]);
    ops.action(`${row.name}: not started: host ${row.host.name} could not be reached (${errorHeadline(result.error) || "its link is down"}); it is not started when the host is back: the next request that names it starts it`, {
      modelId: row.id,
      hostId: row.hostId,
      data: { trigger: "request", unreachable: true },
    });
  }

  function assertOpen(): void {
    if (ctx.closing) throw new ServiceError("UNAVAILABLE", "the fleet is shutting down");
  }

  function stopReacting(): void {
    ctx.closing = true;
    loop.stop();
    for (const e of table.entries()) e.clearTimers();
  }

  /**
   * Marks rows as being planned (the reconciler leaves them alone) before `write` records them as wanted;
   * startPlanned clears the mark. A write that throws clears it here, or the reconciler would skip them
   * for good.
   */
  async function whilePlanning(rows: Parameters<Operations["markPlanning"]>[0], write: () => Promise<unknown>): Promise<void> {
    ops.markPlanning(rows);
    try {
      await write();
    } catch (err) {
      for (const r of rows) {
        const e = table.get(r.id);
        if (e) e.planning = false;
      }
      throw err;
    }
  }

  /**
   * A Restart by hand, wanted running already: the running server stopped (cause `restart`) and started again,
   * planned anew. Its host cannot be reached now (its link down, or none): recorded instead (ServerEntry
   * pendingRestart), said so in an action event and the result's `restartPending`, and made by the reconcile
   * once the host is back; `recorded` is that moment, which its event says. Nothing is stopped while the host
   * is away: a stop that could not be followed by its start would leave the model down for the outage.
   */
  async function makeRestart(row: ModelRow, opts: { wait?: boolean; force?: boolean }, recorded: boolean): Promise<ServerResult> {
    const e = table.remember(row);
    // The recorded one is made only while no later command (a stop) came: the last command wins.
    const seq = e.desiredSeq;
    const overtaken = () => recorded && (e.desiredSeq !== seq || row.server?.desired !== "running");
    if (overtaken()) return resultOf(row, e.state, e.alive ? e.pid : null, null);
    const { link, error } = await ops.hostLink(row.host);
    // Away as the row says it (host-reach.ts): down, or trying again after it was lost (an attempt at a host that
    // drops packets stays `connecting` for the whole connect deadline). The app's first connection is not away:
    // the calls below wait for it.
    const view = hostLinkView(ctx, row.host, loop.linkNote).view;
    const away = !link ? `host ${row.host.name}: ${error ?? "no link"}` : hostUnreachable(view) ? (link.down?.error ?? view.error ?? `host ${row.host.name}: link ${link.state}`) : null;
    if (away !== null) {
      e.pendingRestart = true;
      ops.action(`${row.name}: restart requested: recorded, not yet made: host ${row.host.name} cannot be reached now; it is restarted when the host is back`, { modelId: row.id, hostId: row.hostId, data: { pending: true } });
      return { ...resultOf(row, e.state, e.alive ? e.pid : null, null), restartPending: { host: row.host.name, reason: away } };
    }
    ops.action(recorded ? `${row.name}: restarting now that host ${row.host.name} is back (the restart was recorded while it could not be reached)` : `${row.name}: restart requested`, { modelId: row.id, hostId: row.hostId, ...(recorded ? { data: { recorded: true } } : {}) });
    // A restart onto a port another program holds would stop the working server and then fail to start.
    const held = await heldNextPort(row);
    if (held) {
      const running = row.server!;
      const error = `cannot start ${row.name}: ${held}; ${row.name} keeps running on port ${running.port} (nothing was stopped); ${RESTART_PORT_HELD_ADVICE}`;
      await events.append({ kind: "error", modelId: row.id, hostId: row.hostId, message: `${row.name}: not restarted (${error})`, data: { port: row.port, runningPort: running.port } });
      return { ...resultOf(row, running.observed, running.pid, error), port: running.port! };
    }
    // Its own cause: the stop's events, the agent's status and the run's last log line say it was a restart.
    const stopped = await ops.stopRows([row], "restart");
    if ((stopped[0]?.error && isAlive(stopped[0].state)) || overtaken()) return stopped[0]!;
    // Planned again: its settings may have changed since it last started. A refusal leaves it stopped.
    ops.markPlanning([row]);
    const [result] = await ops.startPlanned([row], opts.wait ?? true, { force: opts.force });
    return noteDisabled(row, result!);
  }

  /**
   * Who holds the port a restart of `row` would start on, when that port differs from its running process's:
   * "port 3428 is held by pid 11606 (python3)"; null when the port is free, the model runs on the registry's
   * port (its own process holds it), or nothing runs; and when it cannot be known (an ssh host whose agent is
   * older than "port-holder", or that does not answer: the start's own check refuses there, after the stop).
   * The agent's probe: a bind on the address the spec binds (resolveSpec: 127.0.0.1), as a start makes it.
   */
  async function heldNextPort(row: ModelRow): Promise<string | null> {
    if (!row.server || !isAlive(row.server.observed) || row.server.port === null) return null;
    if (pendingPort({ port: row.port, server: row.server }) === null) return null;
    return hostPortHolder(links, row.host, row.port, { features: loop.agent(row.hostId)?.features ?? null });
  }

  const fleet: Fleet = {
    async startAll(opts = {}) {
      assertOpen();
      // On-demand models are started by the gateway when a request names them. When memory is short, higher
      // priorities start first, then the registry's order (by name).
      // One read of the registry for the rows to start and their hosts' plans (what runs there, the defaults).
      const [models, settings] = await Promise.all([db.model.findMany({ include: { host: true, server: true }, orderBy: { name: "asc" } }), getSettings(db)]);
      const enabled = models.filter((m) => m.enabled && m.loadPolicy === "always");
      enabled.sort((a, b) => (b.startPriority ?? 0) - (a.startPriority ?? 0));
      // A crashed model waiting for the restart its policy planned is left to it (ServerResult.restartAt): a start
      // now would reset its crash count and defeat the policy's limit (a trial's START ALL, pressed for the other
      // models, reset a crash loop's count at "restart 4 of at most 4").
      const restarting = new Map(enabled.flatMap((m) => (waitsForPlannedRestart(m, table.get(m.id)) ? [[m.id, m] as const] : [])));
      const rows = enabled.filter((m) => !restarting.has(m.id));
      // Wanted now, in the order commands were given (a stop-all a moment before must not overtake it); the
      // plan in each host's queue may refuse some, which are then left stopped.
      await whilePlanning(rows, () => ops.wantRunningMany(rows));
      // The enabled on-demand models it leaves alone are named too: a start-all that started none of them was not a failure.
      // Those a request already loaded are said apart: they are not waiting for a first request.
      const onDemandRows = models.filter((m) => m.enabled && m.loadPolicy === "on-demand");
      const onDemand = onDemandRows.map((m) => m.name);
      // The entry's state is the latest report; the row's can lag behind its write.
      const onDemandLoaded = onDemandRows.filter((m) => table.get(m.id)?.alive ?? isAlive(m.server?.observed ?? "stopped")).map((m) => m.name);
      const waiting = onDemand.length - onDemandLoaded.length;
      const left =
        onDemand.length === 0
          ? ""
          : onDemandLoaded.length === 0
            ? `; ${onDemand.length} on demand, left for their first request`
            : `; ${onDemand.length} on demand: ${onDemandLoaded.length} already loaded (left running)${waiting > 0 ? `, ${waiting} left for their first request` : ""}`;
      const restartingText = restarting.size > 0 ? `; ${restarting.size} left to the restart planned after its crash (${[...restarting.values()].map((m) => m.name).join(", ")})` : "";
      if (enabled.length > 0 || onDemand.length > 0)
        ops.action(`start all: ${rows.length} enabled model(s) with load policy always${restartingText}${left}${opts.force ? " (force: the memory budget is not enforced)" : ""}`, {
          data: { models: rows.map((r) => r.name), restarting: [...restarting.values()].map((m) => m.name), onDemand, onDemandLoaded, force: opts.force ?? false },
        });
      const started = await ops.startPlanned(rows, opts.wait ?? true, { force: opts.force, registry: { models, settings } });
      if (restarting.size === 0) return started;
      // In the start's order (priority, then name), the ones left to their restart among them.
      const byId = new Map(started.map((r) => [r.modelId, r]));
      return enabled.map((m) => byId.get(m.id) ?? { ...resultOf(m, "exited", null, m.server?.lastError ?? null), restartAt: m.server!.nextRestartAt!.toISOString() });
    },

    async stopAll() {
      assertOpen();
      const rows = await db.model.findMany({
        where: { server: { OR: [{ desired: "running" }, { observed: { in: [...ALIVE_STATES] } }] } },
        include: { host: true, server: true },
        orderBy: { name: "asc" },
      });
      await ops.wantStoppedMany(rows, { byStop: true });
      if (rows.length > 0) ops.action(`stop all: ${rows.length} model(s)`, { data: { models: rows.map((r) => r.name) } });
      return ops.stopRows(rows);
    },

    async start(modelId, opts = {}) {
      assertOpen();
      const turn = await inTurn(modelId, async () => {
        const row = opts.row?.id === modelId ? opts.row : await table.loadModel(modelId);
        if (opts.startIf && !opts.startIf(row)) return { row, e: null, seq: 0 };
        const e = table.remember(row);
        return { row, e, seq: ++e.desiredSeq };
      });
      const { row } = turn;
      if (!turn.e) return { ...resultOf(row, row.server?.observed ?? "stopped", row.server?.pid ?? null, null), skipped: true };
      // "Wanted running" is written beside the spawn, not before it (a cold request waited for that write):
      // it queues on the entry's write chain as the start goes out, ahead of every report of the start, so
      // what reports and the reconciler read after it is as before. Meanwhile the entry is busy (planning,
      // then its start in flight): the reconciler leaves it alone. A stop given meanwhile takes a newer
      // desiredSeq, and this write is dropped (the last command wins). A start the plan refuses writes
      // nothing here (its refusal records "stopped"). Should the app end between spawn and write, the next
      // one adopts the running server at first contact (reconciler.ts) and records it wanted then.
      const { e, seq } = turn;
      let wanted: Promise<unknown> | null = null;
      /** "Wanted running" is written (or dropped for a newer command, which desiredSeq then shows). */
      let wantedWritten = false;
      const beside = (r: ModelRow) => {
        // Settled to the error or null at once: nothing waits on it until the start has answered.
        if (r.id === row.id)
          wanted ??= ops.wantRunning(row, seq).then(
            () => ((wantedWritten = true), null),
            (err: unknown) => err ?? new Error("failed"),
          );
      };
      // Ready, recorded wanted, and still the last command: the caller hears it before the ready state's write.
      const onReady = opts.onReady
        ? (r: ModelRow, result: ServerResult) => {
            if (r.id === row.id && wantedWritten && e.desiredSeq === seq) opts.onReady!(result);
          }
        : undefined;
      ops.markPlanning([row]);
      const asked = opts.trigger === "request" ? "started on demand (a request named it)" : "start requested";
      ops.action(`${row.name}: ${asked}${opts.force ? " (force: the memory budget is not enforced)" : ""}`, { modelId, hostId: row.hostId, data: { force: opts.force ?? false, trigger: opts.trigger ?? "user" } });
      let result: ServerResult;
      try {
        [result] = (await ops.startPlanned([row], opts.wait ?? true, { force: opts.force, evict: opts.evict, registry: opts.registry, beside, ...(onReady ? { onReady } : {}) })) as [ServerResult];
      } finally {
        // startPlanned clears it after the plan; here too when it threw first, or the reconciler would skip it for good.
        e.planning = false;
      }
      const failed = wanted ? await wanted : null;
      if (!failed && result.unreachable && opts.trigger === "request" && e.desiredSeq === seq) await unwantUnreached(row, result);
      if (!failed) return noteDisabled(row, result);
      // Started but not recorded as wanted: stopped again, so that what runs and what is recorded agree.
      const [stopped] = await ops.stopRows([row]);
      return { ...stopped!, error: `could not record ${row.name} as wanted running (${errorMessage(failed)}); stopped it again` };
    },

    async stop(modelId, opts = {}) {
      assertOpen();
      // Its place in the command order is taken in its turn (wantStoppedMany takes it as it is called).
      const { row, wanted } = await inTurn(modelId, async () => {
        const row = await table.loadModel(modelId);
        return { row, wanted: ops.wantStoppedMany([row], { byStop: true }) };
      });
      await wanted;
      // Its events say what the stop found (issueStop): "stop requested" only before a process it ends.
      const [result] = await ops.stopRows([row], opts.cause ?? "requested", { announce: true });
      return result!;
    },

    async restart(modelId, opts = {}) {
      assertOpen();
      const { row, wanted } = await inTurn(modelId, async () => {
        const row = await table.loadModel(modelId);
        return { row, wanted: ops.wantRunning(row, undefined, { restart: true }) };
      });
      await wanted;
      return makeRestart(row, opts, false);
    },

    status: () => statusView(ctx, loop.linkNote),

    hostUnreachable: (host) => hostUnreachable(hostLinkView(ctx, host, loop.linkNote).view),

    async logs(modelId, lines = 200, options = {}) {
      const row = await table.loadModel(modelId);
      let link: HostLink;
      try {
        link = await links.get(row.host);
      } catch (err) {
        throw toServiceError(err, `host ${row.host.name}`);
      }
      const count = Math.max(1, Math.min(5000, Math.floor(lines)));
      const text = options.search;
      try {
        if (text === undefined) {
          const r = await link.call("logs", { id: row.name, lines: count }, { timeoutMs: ctx.statusTimeoutMs });
          return { modelId, name: row.name, lines: r.lines, logPath: r.logPath, seq: r.seq ?? null };
        }
        if (await linkWithFeature(links, row.host, "log-search", ctx.statusTimeoutMs, loop.agent(row.hostId)?.features)) {
          // A whole log is read from disk: more time than a tail.
          const r = await link.call("logs", { id: row.name, lines: count, grep: text }, { timeoutMs: Math.max(ctx.statusTimeoutMs, LOG_SEARCH_TIMEOUT_MS) });
          return { modelId, name: row.name, lines: r.lines, logPath: r.logPath, seq: r.seq ?? null, search: { text, matches: r.matches ?? r.lines.length, searchedBytes: r.searchedBytes ?? null, searchedAll: r.searchedAll ?? false, note: null } };
        }
        // An older agent: its last 5000 lines, searched here, and a note that says what to update.
        const r = await link.call("logs", { id: row.name, lines: 5000 }, { timeoutMs: ctx.statusTimeoutMs });
        const needle = text.toLowerCase();
        const found = r.lines.filter((l) => l.toLowerCase().includes(needle));
        const note = `searched the last ${r.lines.length} lines only: the agent on host ${row.host.name} predates whole-log search (log-search); update it to search the whole log`;
        return { modelId, name: row.name, lines: found.slice(-count), logPath: r.logPath, seq: r.seq ?? null, search: { text, matches: found.length, searchedBytes: null, searchedAll: false, note } };
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
      const report = await addDiscoveredModels(db, hostId, infos, { appPort: ctx.appPort, localPortHeld: async (port) => !(await canBind(port, "127.0.0.1")) });
      await events.append({ kind: "action", hostId, message: `host ${host.name}: discovery added ${report.added.length} model(s)`, data: { added: report.added.map((a) => a.name), registered: report.registered.length, skipped: report.skipped.length, errors: report.errors.length } });
      return report;
    },

    async adopt(opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 10_000;
      const hosts = await db.host.findMany({ orderBy: { name: "asc" } });
      return Promise.all(
        hosts.map(async (host): Promise<AdoptionReport> => {
          const { link, error } = await ops.hostLink(host);
          if (!link) return { host: host.name, hostId: host.id, adopted: [], error };
          await waitConnected(link, timeoutMs);
          // A reconcile triggered by the link's "connected" may have got there first: its report is the one.
          const why = loop.contacted(host.id) ? null : await hostQueue.run(host.id, () => loop.reconcileLocked(host.id)).catch((err: unknown) => errorMessage(err));
          return loop.adoption(host.id) ?? { host: host.name, hostId: host.id, adopted: [], error: why ?? `link ${link.state}` };
        }),
      );
    },

    async reconcile(hostId) {
      const ids = hostId ? [hostId] : (await db.host.findMany({ select: { id: true } })).map((h) => h.id);
      await Promise.all(ids.map((id) => loop.reconcileHost(id)));
    },

    async entry(modelId) {
      const e = table.remember(await table.loadModel(modelId));
      await table.withModel(e, async () => undefined);
      return e;
    },

    liveEntry: (model) => table.ensure(model),
    changedSinceFailure,

    agent: (hostId) => loop.agent(hostId),

    async memoryOverview() {
      const hosts = await db.host.findMany({ orderBy: [{ createdAt: "asc" }, { name: "asc" }] });
      // The link as the status view shows it: while the host cannot be reached, its figures are by the last known states.
      return Promise.all(hosts.map(async (h) => ({ ...(await planner.overview(h)), link: hostLinkView(ctx, h, loop.linkNote).view })));
    },

    estimate: (model) => planner.estimate(model),

    async hostMemory(hostId, opts = {}) {
      const host = await db.host.findUnique({ where: { id: hostId } });
      if (!host) throw new ServiceError("NOT_FOUND", `no host with id ${hostId}`);
      if (opts.refresh) {
        const { link } = await ops.hostLink(host);
        if (link && link.state === "connected") await memory.refresh(host, link, { force: true });
      }
      // The link as the status view shows it: while the host cannot be reached, the reading is the last contact's.
      return { ...memory.view(host), link: hostLinkView(ctx, host, loop.linkNote).view };
    },

    async shutdown({ stopServers, deadlineMs = 30_000, drainMs = SHUTDOWN_DRAIN_MS }) {
      const began = Date.now();
      // A restart after a crash that this shutdown cancels is kept for its stop to report (stopReacting clears its timer).
      if (stopServers) for (const e of table.entries()) e.cancelRestartForStop();
      ctx.stoppingServers ||= stopServers;
      stopReacting();
      // The gateway first: it refuses new work and ends what waits, and its requests in flight end before the
      // servers they run on are stopped (bounded: a long stream ends with its server, told why).
      const notice = { stopServers, drainUntil: began + Math.max(0, Math.min(drainMs, deadlineMs / 3)) };
      const counted = shutdownListeners.notify(notice);
      // Said where the dashboard's activity shows it: a trial saw the fleet page read "Live", every model READY,
      // through the whole wait, then only "Reconnecting…".
      const inFlight = requestsInFlight();
      shutdownView = { stopServers, began: new Date(began).toISOString(), drainUntil: new Date(notice.drainUntil).toISOString(), phase: "waiting" };
      ops.action(
        `the app is shutting down (${stopServers ? "stopping every server it manages" : "leaving its servers running: its next start takes them over"}): new gateway requests are refused (503 app_shutting_down)${inFlight > 0 ? `; it first waits up to ${Math.round((notice.drainUntil - began) / 1000)} s for the ${inFlight === 1 ? "request" : `${inFlight} requests`} in flight` : ""}`,
        { data: { shutdown: { stopServers, drainUntil: new Date(notice.drainUntil).toISOString() } } },
      );
      drainCut = new AbortController();
      await drainRequests(requestsInFlight, notice.drainUntil, log, {
        counted,
        cut: drainCut.signal,
        then: stopServers ? "stopping the servers" : "exiting (the servers keep running)",
      });
      drainCut = null;
      shutdownView = { ...shutdownView, phase: stopServers ? "stopping" : "exiting" };
      if (!stopServers) return [];
      deadlineMs -= Date.now() - began;
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
            const rows = await db.model.findMany({ where: { hostId: host.id }, include: { host: true, server: true }, orderBy: { name: "asc" } });
            // These stops are the app's own, with their own cause: what the app records and shows is "stopped at
            // app shutdown", not a user's stop. An agent with shutdown-cause is told so (its log and status say
            // it too); an older one refuses the cause and records "requested", which the app then reads as ours.
            const entries = rows.map((r) => table.remember(r));
            // What each stop finds, as this app knew it before (as issueStop does): only the servers that ran are
            // reported as stopped; the agent answers with every server it manages, stopped long ago or not, and
            // marks an ended one (a crash, a failure) stopped by this call too.
            const found = rows.map((r) => ops.stopFinding(r));
            const running = new Set(rows.filter((_, i) => found[i]!.wasRunning).map((r) => r.name));
            const ended = new Set(rows.filter((_, i) => found[i]!.ended).map((r) => r.name));
            for (const e of entries) {
              e.clearRestart();
              e.stopCause = "shutdown";
              e.stopNote = null;
            }
            // The fleet was stopped on purpose: the next start of the app leaves this host's models stopped
            // (as before this app existed), including any that were waiting for a restart. Written before the
            // stop, as a stop-all does: a model recorded stopped below is then never wanted running without a cause.
            const wanted = rows.filter((r) => r.server?.desired === "running");
            await ops.wantStoppedMany(wanted, { byStop: true });
            // Ended (failed, crashed): nothing of it runs; recorded stopped at shutdown now, in one event that says
            // what was found (a restart cancelled, or that nothing was running), its last error kept, as a user's
            // stop of it is. Before the agent is told, so its answer (the ended process, now stopped) is no news.
            await Promise.all(rows.map((r, i) => ops.recordEndedStop(r, found[i]!, "shutdown")));
            for (const e of entries) {
              // Counted before the call, as issueStop does: a stop the agent reports meanwhile is ours.
              e.stopsInFlight += 1;
              if (e.alive) e.stopAsked = { pid: e.pid, startedAtMs: epochMs(e.startedAt) };
            }
            let stopped: ServerStatus[];
            try {
              const withCause = agentTakesCause(loop.agent(host.id)?.features ?? null, "shutdown");
              stopped = await link.call("stopAll", { graceMs, ...(withCause ? { cause: "shutdown" as const } : {}) }, { timeoutMs: deadlineMs });
            } finally {
              for (const e of entries) e.stopsInFlight -= 1;
            }
            const byName = new Map(rows.map((r) => [r.name, r]));
            const named = new Set<string>();
            for (const s of stopped) {
              const row = byName.get(s.id);
              if (!row) continue;
              await reports.observe(host.id, s, "snapshot", row.id);
              // Stopped by this call: it ran, or the agent (shutdown-cause) says this stop ended it and this app did
              // not know it as ended (the agent's stop of a crashed or failed server only records it stopped).
              if (running.has(s.id) || (s.state === "stopped" && s.cause === "shutdown" && !ended.has(s.id))) {
                named.add(s.id);
                results.push(resultOf(row, s.state, null, s.state === "stopped" ? null : (s.reason ?? null)));
              }
            }
            // Wanted running but nothing of it ran, nor had it ended (a start that had not gone out): no stop to
            // record, only the change of what is wanted, said as such.
            for (const r of wanted) {
              if (running.has(r.name) || ended.has(r.name) || named.has(r.name)) continue;
              ops.action(`${r.name}: no longer wanted running: the app shut down while it was not running (the next start of the app leaves it stopped)`, { modelId: r.id, hostId: host.id, data: { cause: "shutdown", notRunning: true } });
            }
          } catch (err) {
            log.error("stopping the host's servers at shutdown failed", { host: host.name, error: err });
          }
        }),
      );
      return results;
    },

    endShutdownWait() {
      if (!drainCut || drainCut.signal.aborted) return false;
      drainCut.abort();
      return true;
    },

    shutdownState() {
      return shutdownView && { ...shutdownView, requestsInFlight: requestsInFlight() };
    },

    onShutdown: shutdownListeners.add,

    close() {
      closePromise ??= (async () => {
        stopReacting();
        offState();
        offEvent();
        // Let queued decisions and record writes finish (bounded: calls have deadlines).
        await Promise.race([Promise.all([hostQueue.idle(), ...[...table.entries()].map((e) => e.chain)]), new Promise((r) => setTimeout(r, 5000).unref())]);
        table.closed = true;
      })();
      return closePromise;
    },
  };
  return fleet;
}

/** Resolves when the link is connected or has given up (failed, closed), or after timeoutMs. */
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
