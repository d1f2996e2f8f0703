/**
 * Operations: starts and stops issued to the agents, and what users want
 * (desired state). Decisions per host go through the host's queue; each only
 * issues agent calls and registers them on the model's entry as the
 * operation in flight, so a long model load never holds the queue, and a
 * second start of a model joins the first one's operation. Every operation
 * takes the entry's next command number: a late result of an older one is
 * recognised and records only what the agent said (the last command wins).
 */
import type { HostLink } from "synapse-host-agent/link";
import type { AgentFeature, ServerSpec } from "synapse-host-agent/protocol";
import { errorMessage } from "synapse-host-agent/error-text";
import { isAlive, STOP_CAUSE_TEXT, type StopCause } from "synapse-host-agent/server-states";
import { specHash } from "synapse-host-agent/supervisor";
import type { Host } from "~/generated/prisma/client";
import { runStatements } from "~/server/db/sql-driver";
import { getSettings, type SettingsView } from "~/server/services/registry/settings";
import { resolveSpec, serverApiKeyOf, specForAgent } from "~/server/services/registry/spec";
import type { ReportApplier } from "./apply-report";
import type { FleetContext } from "./context";
import type { EventInput } from "./events";
import type { NoteInLog } from "./log-note";
import type { CrashRecord, Restarts } from "./restarts";
import { dueText } from "./restart-policy";
import { epochMs, type Operation, type ServerEntry, type ServerResult } from "./server-entry";
import { resultOf, type ModelRow } from "./server-table";
import { callStart, decideStartOutcome } from "./start-outcome";
import { neverSpawned } from "./report-decision";
import { invalidSettingsHash } from "./settings-hash";
import { updateStatesSql } from "./state-sql";
import type { StartPlanner, StartPlanOptions } from "./start-plan";
import type { Verdict } from "../memory/plan";
import type { StartMemoryNote } from "./server-entry";

export type StartReason = "user" | "restart" | "reconcile";
export interface Prepared {
  row: ModelRow;
  link: HostLink | null;
  linkError: string | null;
  settings: SettingsView;
  /**
   * Called once, as the start is sent to the agent (right after the call goes out, before any report of it
   * can be recorded), or, for a start that ends before that (joined to one in flight, no link, a bad spec),
   * before its outcome is written: the caller's own write that goes beside the spawn (fleet.ts start).
   */
  beside?: () => void;
  /**
   * Called when the agent answers that the server is ready and no newer command (a stop) was given, before
   * that is recorded: the caller may let its waiters go on (the gateway's on-demand start) while the record
   * is written. Not called for any other outcome.
   */
  onReady?: (result: ServerResult) => void;
}

/** How issueStop (and stopRows) tells of a stop. */
export interface StopOptions {
  /**
   * A user's stop of this one model (fleet.stop): its action event, "stop requested" before a process is
   * stopped, or "…; it was not running: nothing to stop". A stop of a model that had ended (failed, crashed)
   * records one state event saying so either way.
   */
  announce?: boolean;
}

/** What a stop finds of one model, as this app knows it just before the stop (Operations.stopFinding). */
export interface StopFinding {
  /** A process that the stop ends (an alive state), or a start planned or in flight. */
  wasRunning: boolean;
  /** Nothing runs and the model had ended: `failed` (a start that never spawned, a crash loop given up) or `exited` (a crash). Null otherwise. */
  ended: "failed" | "exited" | null;
  /** A restart after a crash that this stop cancels: when it was due (ISO 8601) and how far off then (ms; ≤ 0 when its turn had come). */
  restartCancelled: { dueAt: string; dueInMs: number } | null;
}

export interface Operations {
  /** Issues a start (the caller holds the host's queue) and returns the operation without waiting for it. */
  issueStart(modelId: string, reason: StartReason, pre?: Prepared): Promise<{ op: Promise<ServerResult> }>;
  /**
   * `cause`: why this app stops it (default `requested`; the gateway's idle unload says `idle`); `note`: that
   * cause with its particulars, which the "stopping" event says ("evicted to make room for fresh").
   */
  issueStop(row: ModelRow, link: HostLink | null, linkError: string | null, cause?: StopCause, note?: string, options?: StopOptions): Promise<{ op: Promise<ServerResult> }>;
  /**
   * What a stop of this model finds now, as this app knows it (StopFinding). Takes the restart that a change of
   * what is wanted cancelled (ServerEntry.cancelledRestartAtMs, set by wantStoppedMany with byStop): call it
   * once per stop, after that change and before the stop changes anything.
   */
  stopFinding(row: ModelRow): StopFinding;
  /**
   * For a stop that found the model ended (`finding.ended`; none: resolves to null at once): recorded `stopped`
   * with `cause` now, in one state event saying what it found (its restart cancelled, or that nothing was
   * running), the last error kept as history. For the caller's own stop call (the app's shutdown), made
   * before the agent is told so that its answer is no news. Resolves to the ended state it recorded as
   * stopped (`failed` | `exited`), or null when a newer command or report had changed the state meanwhile.
   */
  recordEndedStop(row: ModelRow, finding: StopFinding, cause: StopCause, note?: string): Promise<"failed" | "exited" | null>;
  /**
   * A user asked for it to run: wanted, and the crash window starts over (restarts 0, no recent crashes), unless
   * it already runs as wanted and `restart` is not set (a Start that starts nothing keeps them). `seq`: the number
   * the command took (ServerEntry.desiredSeq) when it is written later than given: written only if no newer change
   * of what is wanted (a stop) came meanwhile. `restart`: a Restart by hand (fleet.restart), a stop and a start of
   * the running server: the window starts over whatever runs.
   */
  wantRunning(row: ModelRow, seq?: number, options?: { restart?: boolean }): Promise<void>;
  /** wantRunning for many: existing rows updated in one transaction of two statements (start-all's latency). */
  wantRunningMany(rows: ModelRow[]): Promise<void>;
  /**
   * No longer wanted running (desired `stopped`), any pending restart cancelled. `byStop`: a stop of them
   * follows (issueStop), which records a failed model stopped with its cause and reports the cancelled
   * restart; without it (a start the memory plan refused), a start that never spawned is simply `stopped`.
   */
  wantStoppedMany(rows: ModelRow[], options?: { byStop?: boolean }): Promise<void>;
  /** Starts these models (already wanted), grouped by host, hosts in parallel. */
  startRows(rows: ModelRow[], wait: boolean): Promise<ServerResult[]>;
  /**
   * Starts what fits in each host's memory budget (start-plan.ts), in the order given (the caller has
   * wanted them and marked them planning); the rest are refused with their numbers and left stopped. With `evict`, idle on-demand models are
   * stopped first (cause `evicted`) to make room. Hosts in parallel; the plan and the starts of a host in its queue.
   */
  startPlanned(rows: ModelRow[], wait: boolean, options: StartPlanOptions): Promise<ServerResult[]>;
  /** Marks these entries as waiting for their plan (the reconciler leaves them alone until startPlanned has decided). */
  markPlanning(rows: ModelRow[]): void;
  stopRows(rows: ModelRow[], cause?: StopCause, options?: StopOptions): Promise<ServerResult[]>;
  /** Pushes the host's desired set (what `start-metal-servers` on the host starts); skipped when unchanged. */
  pushDesired(host: Host, link: HostLink, settings?: SettingsView): Promise<void>;
  hostLink(host: Host): Promise<{ link: HostLink | null; error: string | null }>;
  /** An action event; appends are ordered by the bus, so nothing waits for it. */
  action(message: string, extra?: Omit<EventInput, "kind" | "message">): void;
}

/** Whether a model's server runs as wanted (wanted running, alive): a start of it starts nothing, and keeps its crash count and history. */
function runsAsWanted(row: ModelRow, e: ServerEntry): boolean {
  return row.server?.desired === "running" && isAlive(e.state);
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

/** A verdict as results report it (null: it already ran); `mayFitLater`: a refusal's (start-plan.ts HostPlan.refused). */
function memoryNote(v: Verdict | null, mayFitLater?: boolean): StartMemoryNote {
  if (v === null) return { verdict: "running", message: null, neededBytes: null, leftBytes: null, budgetBytes: null };
  if (v.kind === "unchecked") return { verdict: "unchecked", message: v.note, neededBytes: null, leftBytes: null, budgetBytes: null };
  if (v.kind === "fits") return { verdict: "fits", message: null, neededBytes: v.neededBytes, leftBytes: v.leftBytes + v.neededBytes, budgetBytes: v.budgetBytes };
  return { verdict: v.kind, message: v.message, neededBytes: v.neededBytes, leftBytes: v.leftBytes, budgetBytes: v.budgetBytes, ...(v.kind === "refused" && mayFitLater !== undefined ? { mayFitLater } : {}) };
}

/** Causes newer than stop-with-cause, each with the feature of the agents that take it (older ones refuse it). */
const NEWER_CAUSES: Partial<Record<StopCause, AgentFeature>> = { shutdown: "shutdown-cause", restart: "restart-cause" };

/**
 * Whether an agent with hello `features` (null: not read yet) accepts `cause` in its `stop` params:
 * stop-with-cause for the causes it came with, and shutdown-cause or restart-cause for the newer ones
 * (an agent with only stop-with-cause refuses them).
 */
export function agentTakesCause(features: readonly string[] | null, cause: StopCause): boolean {
  return features?.includes(NEWER_CAUSES[cause] ?? "stop-with-cause") ?? false;
}

/** `features(hostId)`: the host agent's hello features; null before its hello was read. */
/** The longest the desired set waits for the spawns it follows (a state event lost with its link). */
export const DESIRED_AFTER_SPAWN_MAX_MS = 2000;

/**
 * Watches `link` for the first state report of each server named (the agent reports "starting" once it has
 * spawned one, or why it did not). `until(ended)` resolves once each has reported, once `ended` settles (the
 * starts answered), or after DESIRED_AFTER_SPAWN_MAX_MS, and stops watching.
 */
function spawnsReported(link: HostLink, names: string[]): { until(ended: Promise<unknown>): Promise<void> } {
  const waiting = new Set(names);
  let done: (() => void) | null = null;
  const off = link.onEvent((e) => {
    if (e.kind !== "state") return;
    waiting.delete(e.status.id);
    if (waiting.size === 0) done?.();
  });
  return {
    until(ended) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => done?.(), DESIRED_AFTER_SPAWN_MAX_MS);
        done = () => {
          done = null;
          clearTimeout(timer);
          off();
          resolve();
        };
        if (waiting.size === 0) done();
        void ended.then(
          () => done?.(),
          () => done?.(),
        );
      });
    },
  };
}

export function createOperations(ctx: FleetContext, reports: ReportApplier, restarts: Restarts, planner: StartPlanner, features: (hostId: string) => readonly string[] | null = () => null, noteInLog: NoteInLog = () => undefined): Operations {
  const { db, links, events, table, now, hostQueue } = ctx;
  /** The desired set last pushed with `apply`, per host and link. */
  const pushed = new Map<string, { link: HostLink; key: string }>();

  function put(e: ServerEntry, kind: Operation["kind"], promise: Promise<ServerResult>, seq: number): Promise<ServerResult> {
    return e.track({ kind, seq, promise }).promise;
  }

  /**
   * A start that could not start: `failed` with the error (and an error event); no process ran, so none ended by a
   * code or signal, and no restart is planned (a restart's start ends its planned restart so; the restart policy's
   * decision, when one follows in the same transaction, sets the next).
   */
  function failedRecord(e: ServerEntry, row: ModelRow, text: string): CrashRecord {
    return {
      data: { observed: "failed", pid: null, cause: null, lastError: text, stopIncomplete: null, lastExitCode: null, lastSignal: null, nextRestartAt: null },
      // The agent's text often begins "cannot start <name>: …" already; it is not said twice.
      event: { kind: "error", state: "failed", message: text.startsWith(`cannot start ${row.name}`) ? text : `${row.name}: cannot start: ${text}` },
      apply: () => {
        e.state = "failed";
        e.cause = null;
      },
    };
  }

  async function markFailed(e: ServerEntry, row: ModelRow, text: string): Promise<void> {
    const r = failedRecord(e, row, text);
    r.apply!();
    await table.writeState(e, r.data, r.event);
  }

  /**
   * Records a stop that found the model ended (finding.ended) as `stopped` with `cause`, at once, in one event
   * that says what it found: "alpha: stopped (stopped on request; it had failed, nothing was running)", or for
   * a crash whose restart it cancels "…; it had crashed; its restart (due in 0.5 s) is cancelled". No stop of a
   * process is recorded (the event's pid is null): the old process's pid and signal stay those of its end. The
   * last error stays as history; e.pid stays the ended process's (the agent's report of it stopped is then no
   * news). `seq`: the stop's command number; nothing is written when a newer command came or the state changed
   * meanwhile. Resolves to the ended state recorded as stopped, or null when nothing was written.
   */
  async function recordEnded(e: ServerEntry, row: ModelRow, seq: number, finding: StopFinding, cause: StopCause, note: string | undefined): Promise<"failed" | "exited" | null> {
    const { restartCancelled } = finding;
    let recorded: "failed" | "exited" | null = null;
    await table.withModel(e, async () => {
      if (!e.isCurrent(seq) || (e.state !== "failed" && e.state !== "exited")) return;
      const was = e.state;
      const said = restartCancelled ? `it had crashed; its restart (${dueText(restartCancelled.dueInMs)}) is cancelled` : `it had ${was === "failed" ? "failed" : "crashed"}, nothing was running`;
      recorded = was;
      e.state = "stopped";
      e.cause = cause;
      await table.writeState(
        e,
        { observed: "stopped", pid: null, cause, nextRestartAt: null },
        { kind: "state", state: "stopped", message: `${row.name}: stopped (${note ?? STOP_CAUSE_TEXT[cause]}; ${said})`, data: { pid: null, previous: was, cause, ...(restartCancelled ? { restartCancelled } : { notRunning: true }) } },
      );
      // The log's last line said a restart was coming (the app's note after the crash): it is not.
      if (restartCancelled) noteInLog(e, `its restart is cancelled: ${note ?? STOP_CAUSE_TEXT[cause]}; it stays stopped`);
    });
    return recorded;
  }

  const ops: Operations = {
    async hostLink(host) {
      try {
        return { link: await links.get(host), error: null };
      } catch (err) {
        return { link: null, error: errorMessage(err) };
      }
    },

    async pushDesired(host, link, settings) {
      const rows = await db.model.findMany({ where: { hostId: host.id, server: { desired: "running" } }, orderBy: { name: "asc" } });
      const s = settings ?? (await getSettings(db));
      const specs: ServerSpec[] = [];
      for (const m of rows) {
        try {
          specs.push(specForAgent(resolveSpec(m, host, s, { apiKey: serverApiKeyOf(m) }), features(host.id), host.name).spec);
        } catch {
          // A model that does not make a valid spec is reported when it is started.
        }
      }
      const key = JSON.stringify(specs);
      const last = pushed.get(host.id);
      if (last && last.link === link && last.key === key) return;
      try {
        await link.call("apply", { specs }, { timeoutMs: ctx.statusTimeoutMs });
        pushed.set(host.id, { link, key });
      } catch (err) {
        ctx.log.warn("could not push the desired set to the host", { host: host.name, error: err });
      }
    },

    async issueStart(modelId, reason, pre) {
      const row = pre?.row ?? (await table.loadModel(modelId));
      const e = table.remember(row);
      if (e.op?.kind === "start") {
        pre?.beside?.();
        return { op: e.op.promise };
      }
      // Shutdown has sent (or is sending) its stop-all: a start issued now would outlive the app.
      if (ctx.closing) {
        pre?.beside?.();
        return { op: Promise.resolve(resultOf(row, e.state, null, "the fleet is shutting down")) };
      }
      const server = row.server;
      // A restart is made only while it is still recorded as planned (nextRestartAt): a stop, a start by hand, a
      // decision to give up, or a process of it recorded (its `starting`: a turn of it that came late) clear it.
      const restartGone = reason === "restart" && server?.nextRestartAt == null;
      if (reason !== "user" && (server?.desired !== "running" || server.observed === "failed" || restartGone)) {
        // A restart no longer wanted: whoever changed that (a stop, which noted it as it did) cancelled it.
        if (reason === "restart" && e.restartTimer === null) e.restartDueAtMs = null;
        return { op: Promise.resolve(resultOf(row, server?.observed ?? "stopped", server?.pid ?? null, null)) };
      }
      const settings = pre?.settings ?? (await getSettings(db));
      let spec: ServerSpec;
      try {
        spec = resolveSpec(row, row.host, settings, { apiKey: serverApiKeyOf(row) });
        // What this start was given (settings-hash.ts): its failed state keeps it.
        e.startSettingsHash = specHash(spec);
      } catch (err) {
        e.startSettingsHash = invalidSettingsHash(err);
        const text = errorMessage(err);
        pre?.beside?.();
        await table.withModel(e, () => markFailed(e, row, text));
        return { op: Promise.resolve(resultOf(row, "failed", null, text)) };
      }
      const { link, error: linkError } = pre ? { link: pre.link, error: pre.linkError } : await ops.hostLink(row.host);
      if (!link) {
        const text = `host ${row.host.name}: ${linkError ?? "no link"}`;
        pre?.beside?.();
        e.hostErrorNoted = text;
        await table.withModel(e, () => table.writeState(e, { lastError: text }));
        return { op: Promise.resolve({ ...resultOf(row, e.state, null, text), unreachable: true as const }) };
      }
      // With the link up its agent's features are known (an agent older than "threads-auto" gets a thread count).
      const fitted = specForAgent(spec, features(row.hostId), row.host.name);
      if (fitted.dropped) {
        pre?.beside?.();
        await table.withModel(e, () => markFailed(e, row, fitted.dropped!));
        return { op: Promise.resolve(resultOf(row, "failed", null, fitted.dropped)) };
      }
      spec = fitted.spec;
      e.clearRestart();
      if (reason === "restart") {
        await table.withModel(e, async () => {
          if (table.closed) return;
          // The count since the last start by hand, not "restart N": the decision before it said "restart 1 of at
          // most 4 within 10 minutes", the count within the restart policy's window (restart-policy.ts).
          // Its due time (nextRestartAt) stays until the start's outcome is recorded (`starting`, or the decision
          // after a start that failed): an app that dies before then resumes it (reconciler.ts), and a reader
          // meanwhile sees the restart due, not a crash with nothing planned.
          const s = await db.serverState.update({ where: { modelId: e.modelId }, data: { restarts: { increment: 1 } } });
          await events.append({ kind: "action", modelId: e.modelId, hostId: e.hostId, message: `${row.name}: restarting after a crash (${s.restarts} restart${s.restarts === 1 ? "" : "s"} since it was last started by hand)`, data: { restarts: s.restarts } });
        });
      }
      const seq = e.nextCommand();
      e.restartStartSeq = reason === "restart" ? seq : null;
      const timeoutMs = spec.readinessDeadlineMs + spec.stopGraceMs + 15_000;
      const call = callStart(link, spec, timeoutMs);
      // A fresh process: a restart recorded while the host was away is made by this start.
      e.pendingRestart = false;
      // After the call went out: the agent spawns meanwhile. Before the outcome's writes, which queue behind it.
      pre?.beside?.();
      const op = call.then(async (outcome) => {
        const d = decideStartOutcome(outcome, { current: e.isCurrent(seq), restart: reason === "restart" });
        if (outcome.outcome !== "unreachable") e.restartUnreachable = null;
        if (outcome.outcome === "ready" && d.result.state === "ready" && typeof d.result.pid === "number" && e.isCurrent(seq)) pre?.onReady?.(resultOf(row, "ready", d.result.pid, null));
        for (let i = 0; i < d.steps.length; i++) {
          const step = d.steps[i]!;
          // A failure followed by its crash is recorded with the crash's decision, in one transaction.
          const next = d.steps[i + 1];
          const crash = next?.kind === "crash" ? next.why : undefined;
          if (crash !== undefined) i++;
          if (step.kind === "record") await reports.observe(row.hostId, step.status, "snapshot", row.id, crash);
          else if (step.kind === "noteError") {
            // Only an unreachable host is noted so (start-outcome.ts): cleared once the host answers again.
            e.hostErrorNoted = step.error;
            await table.withModel(e, () => table.writeState(e, { lastError: step.error }));
          }
          else if (step.kind === "restartLater") await table.withModel(e, () => restarts.afterUnreachable(e, step.error));
          else if (step.kind === "markFailed") await table.withModel(e, () => (crash !== undefined ? restarts.afterCrash(e, crash, failedRecord(e, row, step.error)) : markFailed(e, row, step.error)));
          else await table.withModel(e, () => restarts.afterCrash(e, step.why));
        }
        if (e.restartStartSeq === seq) e.restartStartSeq = null;
        const result: ServerResult = { ...resultOf(row, d.result.state ?? e.state, d.result.pid === "recorded" ? e.pid : d.result.pid, d.result.error), ...(d.result.unreachable ? { unreachable: true as const } : {}) };
        return d.result.port !== null ? { ...result, port: d.result.port } : result;
      });
      return { op: put(e, "start", op, seq) };
    },

    async issueStop(row, link, linkError, cause = "requested", note, options = {}) {
      const e = table.remember(row);
      const finding = ops.stopFinding(row);
      const { wasRunning, ended, restartCancelled } = finding;
      /** The ended state this stop recorded as stopped (below); null until then, or when it had changed meanwhile. */
      let endedRecorded: "failed" | "exited" | null = null;
      const result = (state: string, pid: number | null, error: string | null): ServerResult => ({
        ...resultOf(row, state, pid, error),
        ...(wasRunning || restartCancelled ? {} : { notRunning: true as const }),
        ...(endedRecorded && state === "stopped" ? { previousState: endedRecorded } : {}),
        ...(restartCancelled ? { restartCancelled } : {}),
      });
      e.clearRestart();
      e.stopCause = cause;
      e.stopNote = note ?? null;
      e.pendingStop = null;
      // A restart recorded while the host was away: this stop is the last command.
      e.pendingRestart = false;
      /** The host cannot be reached: the stop is recorded (wanted stopped) and made by the reconcile once it is back. */
      const pending = (reason: string): ServerResult => {
        e.pendingStop = { cause, note: note ?? null };
        return { ...result(e.state, e.pid, null), stopPending: { host: row.host.name, reason } };
      };
      if (options.announce && !ended) {
        // A stop that will end a process (its events follow), or one that finds nothing at all to stop. A stop
        // that finds the model ended says so in the one event that records it (below). One whose host cannot be
        // reached is only recorded: said so, not as done ("unloaded after its idle time" while it still ran).
        const asked = cause === "requested" ? "stop requested" : STOP_CAUSE_TEXT[cause];
        const away = !link || link.state !== "connected";
        const told = away ? `stop (${asked}): recorded, not yet made: host ${row.host.name} cannot be reached now; it is stopped when the host is back` : asked;
        ops.action(`${row.name}: ${told}${wasRunning ? "" : "; it was not running: nothing to stop"}`, { modelId: row.id, hostId: row.hostId, data: { cause, ...(wasRunning ? {} : { notRunning: true }), ...(away ? { pending: true } : {}) } });
      }
      if (!link && !ended) return { op: Promise.resolve(pending(`host ${row.host.name}: ${linkError ?? "no link"}`)) };
      const seq = e.nextCommand();
      // Nothing runs: the stop ends here, recorded before the agent is told, so its answer (the same ended
      // process, now stopped) is no news.
      if (ended) endedRecorded = await recordEnded(e, row, seq, finding, cause, note);
      // Nothing ran: no link to tell the agent over changes nothing of it.
      if (!link) return { op: Promise.resolve(result(e.state, null, null)) };
      const graceMs = (await getSettings(db)).stopGraceMs;
      // Counted before the call: a stop the agent reports from now until it answers is ours.
      e.stopsInFlight += 1;
      if (e.alive) e.stopAsked = { pid: e.pid, startedAtMs: epochMs(e.startedAt) };
      // The cause goes to an agent that takes it (an older one refuses the field; its side then says `requested`).
      const withCause = cause !== "requested" && agentTakesCause(features(row.hostId), cause);
      const op = link.call("stop", { id: row.name, ...(withCause ? { cause } : {}) }, { timeoutMs: graceMs + 30_000 }).then(
        async (status) => {
          e.stopsInFlight -= 1;
          await reports.observe(row.hostId, status, "snapshot", row.id);
          // A stop that ended `failed` (the port still held, stop-incomplete.ts) says why, as the row's last error does.
          return result(ended ? e.state : status.state, null, !ended && status.state === "failed" ? (status.reason ?? "the stop did not complete") : null);
        },
        async (err: unknown) => {
          e.stopsInFlight -= 1;
          const text = errorMessage(err);
          // Nothing ran and the stop is recorded: the agent's error (its record of the ended process) changes none of it.
          if (ended) return result(e.state, null, null);
          // Not sent, or the link dropped while it was pending: the stop stays wanted and is made once the host is
          // back. Not the model's failure: no last error (a trial saw "unreachable (next attempt in 1000 ms)" there
          // long after the stop was made).
          if (link.state !== "connected" && e.isCurrent(seq)) return pending(text);
          if (e.isCurrent(seq)) await table.withModel(e, () => table.writeState(e, { lastError: text }));
          return result(e.state, e.pid, text);
        },
      );
      return { op: put(e, "stop", op, seq) };
    },

    stopFinding(row) {
      const e = table.remember(row);
      // As this app knows it before the stop: a process (or a start planned or in flight) that the stop ends, or none.
      // An entry not loaded yet has only the row's recorded state to go by.
      const found = e.loaded ? e.state : (row.server?.observed ?? "stopped");
      const wasRunning = isAlive(found) || e.planning || e.op?.kind === "start";
      // A restart after a crash that this stop cancels: cancelled as it was no longer wanted (wantStoppedMany), or now.
      const restartAt = e.cancelledRestartAtMs ?? e.restartDueAtMs;
      e.cancelledRestartAtMs = null;
      const restartCancelled = !wasRunning && restartAt !== null ? { dueAt: new Date(restartAt).toISOString(), dueInMs: restartAt - now() } : null;
      // What the stop found: the model ended (a failed start, a crash loop given up, a crash not restarted). Not a
      // stop that could not free the port (recorded from the agent's report, stop-incomplete.ts): its holder may
      // live on, so this stop is the agent's to make and report, not one to record as done.
      const leftover = found === "failed" && (row.server?.stopIncomplete ?? null) !== null;
      const ended = !wasRunning && !leftover && (found === "failed" || found === "exited") ? found : null;
      return { wasRunning, ended, restartCancelled };
    },

    recordEndedStop(row, finding, cause, note) {
      if (!finding.ended) return Promise.resolve(null);
      const e = table.remember(row);
      return recordEnded(e, row, e.nextCommand(), finding, cause, note);
    },

    async wantRunning(row, seq, options = {}) {
      const e = table.remember(row);
      if (seq === undefined) e.desiredSeq += 1;
      e.clearRestart();
      e.pendingStop = null;
      e.cancelledRestartAtMs = null;
      await table.withModel(e, async () => {
        // A stop given since this start was: the stop is the last command, and was recorded.
        if (seq !== undefined && seq !== e.desiredSeq) return;
        const clearFailed = e.state === "failed" || e.state === "exited";
        if (clearFailed) e.state = "stopped";
        // A start of a server that runs as wanted is no start by hand: its crash count and history stay. A Restart
        // by hand stops and starts it: they start over.
        const noStart = !options.restart && runsAsWanted(row, e);
        await table.writeState(e, { desired: "running", desiredAt: new Date(now()), ...(noStart ? {} : { restarts: 0, recentCrashes: "[]" }), nextRestartAt: null, ...(clearFailed ? { observed: "stopped" } : {}) });
      });
    },

    async wantRunningMany(rows) {
      const existing = rows.filter((r) => r.server !== null);
      await Promise.all(rows.filter((r) => r.server === null).map((r) => ops.wantRunning(r)));
      if (existing.length === 0) return;
      const es = existing.map(table.remember);
      for (const e of es) {
        e.desiredSeq += 1;
        e.clearRestart();
        e.cancelledRestartAtMs = null;
      }
      await Promise.all(es.map((e) => e.chain));
      const ids = existing.map((r) => r.id);
      // Servers that run as wanted are not started by this: their crash counts and histories stay (wantRunning).
      const started = existing.filter((r, i) => !runsAsWanted(r, es[i]!)).map((r) => r.id);
      const at = new Date(now());
      await runStatements(db, [
        updateStatesSql(ids, { observed: "stopped", failedSpecHash: null }, { observedIn: ["failed", "exited"] }),
        updateStatesSql(ids, { desired: "running", desiredAt: at, nextRestartAt: null }),
        ...(started.length > 0 ? [updateStatesSql(started, { restarts: 0, recentCrashes: "[]" })] : []),
      ]);
      for (const e of es) if (e.state === "failed" || e.state === "exited") e.state = "stopped";
    },

    async wantStoppedMany(rows, options = {}) {
      if (rows.length === 0) return;
      const es = rows.map(table.remember);
      for (const e of es) {
        e.desiredSeq += 1;
        e.pendingRestart = false;
        // Kept for the stop that follows to report; otherwise simply cancelled.
        if (options.byStop) e.cancelRestartForStop();
        else e.clearRestart();
      }
      await Promise.all(es.map((e) => e.chain));
      const ids = rows.map((r) => r.id);
      await runStatements(db, [
        // A start that never spawned (failed, no cause) was a wish to run that could not be met; no longer
        // wanted, the model is simply stopped: nothing of it runs (as wantRunning clears it for a new start).
        // A stop records that itself, with its cause and an event (issueStop).
        ...(options.byStop ? [] : [updateStatesSql(ids, { observed: "stopped", failedSpecHash: null }, { observedIn: ["failed"], noCause: true })]),
        updateStatesSql(ids, { desired: "stopped", desiredAt: new Date(now()), nextRestartAt: null }),
      ]);
      if (!options.byStop) for (const e of es) if (neverSpawned(e)) e.state = "stopped";
    },

    action(message, extra = {}) {
      void events.append({ kind: "action", message, ...extra }).catch(() => undefined);
    },

    async startRows(rows, wait) {
      const perHost = await Promise.all(
        groupByHost(rows).map((hostRows) =>
          hostQueue.run(hostRows[0]!.hostId, async () => {
            const host = hostRows[0]!.host;
            const { link, error } = await ops.hostLink(host);
            const settings = await getSettings(db);
            const issued = await Promise.all(hostRows.map((row) => ops.issueStart(row.id, "user", { row, link, linkError: error, settings }).then((r) => ({ row, op: r.op }))));
            // The desired set (what the host's start-metal-servers starts) is recorded while they load, not before.
            if (link) await ops.pushDesired(host, link, settings);
            return issued;
          }),
        ),
      );
      const issued = perHost.flat();
      if (wait) return Promise.all(issued.map((i) => i.op));
      // Not waiting: report what is known now (a start issued is "starting").
      return issued.map(({ row }) => {
        const e = table.get(row.id)!;
        const state = e.alive ? e.state : e.op?.kind === "start" ? "starting" : e.state;
        return resultOf(row, state, e.alive ? e.pid : null, null);
      });
    },

    markPlanning(rows) {
      for (const r of rows) table.remember(r).planning = true;
    },

    async startPlanned(rows, wait, options) {
      const perHost = await Promise.all(
        groupByHost(rows).map((hostRows) =>
          hostQueue.run(hostRows[0]!.hostId, async () => {
            const host = hostRows[0]!.host;
            const { link, error } = await ops.hostLink(host);
            let plan: Awaited<ReturnType<StartPlanner["planHost"]>>;
            try {
              plan = await planner.planHost(host, link, hostRows, options);
            } finally {
              for (const r of hostRows) table.remember(r).planning = false;
            }
            let evicted: string[] = [];
            let evictionFailed: string | null = null;
            // A model chosen while idle may have taken a request since the plan was made: it is not evicted
            // under its client (the idle unloader re-checks the same way); the start is refused instead.
            const busy = plan.evict.filter((r) => (table.get(r.id)?.inFlight ?? 0) > 0);
            if (busy.length > 0) {
              evictionFailed = `${busy.map((r) => r.name).join(", ")} took a request while room was being made`;
            } else if (plan.evict.length > 0) {
              const forWhom = plan.admitted.find((a) => a.verdict !== null)?.row.name ?? hostRows[0]!.name;
              await ops.wantStoppedMany(plan.evict);
              // Its idle countdown would only stop it again.
              for (const r of plan.evict) table.get(r.id)?.clearIdle();
              for (const r of plan.evict) ops.action(`${r.name}: evicted to make room for ${forWhom} on ${host.name}`, { modelId: r.id, hostId: host.id, data: { cause: "evicted", for: forWhom } });
              // The room must be free before the spawn: wait for the stops (bounded by their own deadlines).
              const stops = await Promise.all(plan.evict.map((r) => ops.issueStop(r, link, error, "evicted", `evicted to make room for ${forWhom}`).then((s) => s.op)));
              evicted = plan.evict.map((r) => r.name);
              const stuck = stops.filter((s) => s.error !== null && s.state !== "stopped");
              if (stuck.length > 0) evictionFailed = `could not stop ${stuck.map((s) => `${s.name} (${s.error})`).join(", ")} to make room`;
            }
            const admitted = evictionFailed ? plan.admitted.filter((a) => a.verdict === null) : plan.admitted;
            const refused: ServerResult[] = [];
            // Refused: not wanted after all (the reconciler must not start it).
            await ops.wantStoppedMany(plan.refused.map((r) => r.row));
            for (const r of plan.refused) {
              const e = table.remember(r.row);
              await table.withModel(e, () => table.writeState(e, { lastError: r.verdict.message }, { kind: "error", message: `${r.row.name}: not started: ${r.verdict.message}`, data: { memory: memoryNote(r.verdict, r.mayFitLater) } }));
              refused.push({ ...resultOf(r.row, e.state, e.alive ? e.pid : null, r.verdict.message), memory: memoryNote(r.verdict, r.mayFitLater) });
            }
            if (evictionFailed) {
              await ops.wantStoppedMany(plan.admitted.filter((x) => x.verdict !== null).map((x) => x.row));
              for (const a of plan.admitted.filter((x) => x.verdict !== null)) {
                const e = table.remember(a.row);
                refused.push({ ...resultOf(a.row, e.state, null, `${a.row.name} not started: ${evictionFailed}`), memory: memoryNote(a.verdict), evicted });
              }
            }
            for (const a of admitted) {
              if (a.verdict?.kind === "forced") ops.action(`${a.row.name}: started by force over the memory budget: ${a.verdict.message}`, { modelId: a.row.id, hostId: host.id, data: { memory: memoryNote(a.verdict), force: true } });
              if (a.verdict?.kind === "unchecked") ops.action(`${a.row.name}: ${a.verdict.note}`, { modelId: a.row.id, hostId: host.id, data: { memory: memoryNote(a.verdict) } });
            }
            const settings = plan.settings;
            // Listening before the starts go out: a local agent reports a spawn within the same turn.
            const spawned = link ? spawnsReported(link, admitted.map((a) => a.row.name)) : null;
            const issued = await Promise.all(
              admitted.map(({ row, verdict }) =>
                ops.issueStart(row.id, "user", { row, link, linkError: error, settings, ...(options.beside ? { beside: () => options.beside!(row) } : {}), ...(options.onReady ? { onReady: (r: ServerResult) => options.onReady!(row, r) } : {}) }).then((r) => ({ row, op: r.op, memory: memoryNote(verdict) })),
              ),
            );
            // The desired set is recorded while they load, once they have spawned: pushed as soon as the starts
            // went out, its registry read and the agent's file write ran beside the agent's checks before the
            // spawn (an in-process agent shares this event loop), and an on-demand start spawned ~5 ms later.
            if (link && spawned) {
              await spawned.until(Promise.all(issued.map((i) => i.op)));
              await ops.pushDesired(host, link, settings);
            }
            return { issued, refused, evicted };
          }),
        ),
      );
      const extra = (x: { memory: StartMemoryNote }, evicted: string[]) => ({ memory: x.memory, ...(evicted.length > 0 ? { evicted } : {}) });
      const started = perHost.flatMap((h) =>
        h.issued.map((i) => ({ ...i, evicted: h.evicted })),
      );
      const refused = perHost.flatMap((h) => h.refused);
      let results: ServerResult[];
      if (wait) results = await Promise.all(started.map(async (i) => ({ ...(await i.op), ...extra(i, i.evicted) })));
      else {
        results = started.map((i) => {
          const e = table.get(i.row.id)!;
          const state = e.alive ? e.state : e.op?.kind === "start" ? "starting" : e.state;
          return { ...resultOf(i.row, state, e.alive ? e.pid : null, null), ...extra(i, i.evicted) };
        });
      }
      // In the order asked for.
      const all = [...results, ...refused];
      const order = new Map(rows.map((r, i) => [r.id, i]));
      return all.sort((a, b) => (order.get(a.modelId) ?? 0) - (order.get(b.modelId) ?? 0));
    },

    async stopRows(rows, cause, options) {
      const perHost = await Promise.all(
        groupByHost(rows).map((hostRows) =>
          hostQueue.run(hostRows[0]!.hostId, async () => {
            const host = hostRows[0]!.host;
            const { link, error } = await ops.hostLink(host);
            const issued = await Promise.all(hostRows.map((row) => ops.issueStop(row, link, error, cause, undefined, options)));
            if (link) await ops.pushDesired(host, link);
            return issued;
          }),
        ),
      );
      return Promise.all(perHost.flat().map((i) => i.op));
    },
  };
  return ops;
}
