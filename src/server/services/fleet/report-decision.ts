/**
 * What to do with one report from a host's agent about one server, as a
 * pure function: (entry snapshot, report, context) → a decision as data.
 * apply-report.ts carries it out (writes, restart policy, timers); keeping
 * the rules here makes them testable without processes, like reconciler.ts.
 *
 * The rules, in order:
 * - Snapshots (call results, `status`) may be older than an event already
 *   recorded: one that would move the same process backwards, or that
 *   describes an older process, is stale.
 * - A start refused before any spawn (port held, bad spec, …) leaves the
 *   model `failed` with no cause and no process. The agent still reports
 *   the process before it (its last record, e.g. `stopped` by an earlier
 *   stop) until a new one spawns: that end is already recorded and older
 *   than the failed start, so it changes nothing (it is not a stop now, and
 *   `failed` stays until someone starts or stops the model).
 * - An end (exit, failure) is recorded once per process (pid + start time):
 *   the agent keeps reporting a dead server as `exited` until it is started
 *   or stopped, and that is the same crash, not a new one.
 * - Every stop or exit has a cause: the agent's when it sends one (agents
 *   with the `stop-cause` feature), otherwise inferred. A stop this app
 *   issued is `requested` whatever the timing; a stop reported as an event
 *   while no stop of ours was pending, of a live server the user wants
 *   running, was made on the host: the user's latest word there.
 * - Every recorded report says whether it is a stop that left the port
 *   held (stop-incomplete.ts): the agent's field, or an older agent's words.
 * - A recorded live state (the restart's `starting`) or `failed` ends a
 *   crash's planned restart (nextRestartAt): the restart's start keeps it
 *   until then (operations.ts issueStart).
 */
import { LOG_TAIL_MARK } from "synapse-host-agent/error-text";
import type { ServerStatus } from "synapse-host-agent/protocol";
import { isAlive, STOP_CAUSE_TEXT, type StopCause } from "synapse-host-agent/server-states";
import { epochMs, sameProcess, type EntrySnapshot, type ProcessKey } from "./server-entry";
import type { StateData } from "./state-sql";
import { stopIncompleteColumn, stopIncompleteOf } from "./stop-incomplete";

export interface AgentReport {
  /** `event`: pushed by the agent as it happened, in order. `snapshot`: a call's result or a `status` answer. */
  source: "event" | "snapshot";
  status: ServerStatus;
  /** Taken when the report arrived: a stop this app issued had not been answered yet. */
  appStopPending: boolean;
}

export interface ReportContext {
  /** Epoch ms. */
  now: number;
  /** What the user wants, when the caller knows it (needed to tell a stop on the host). */
  desired: "running" | "stopped" | null;
  /** The app is shutting down (its own stop-all is under way). */
  closing: boolean;
  /**
   * The report is of a restart after a crash that the app is starting (or its outcome): a `failed` start is then
   * a crash the restart policy decides on (restart again, or give up and record `failed`), so it is recorded and
   * told as `exited`, as the status shows it, not as "alpha: failed (…)" before "restarting in 2.0 s".
   */
  restartStarting?: boolean;
}

/** What to set on the entry in memory. */
export interface EntryChange {
  state: string;
  pid: number | null;
  startedAt?: string;
  backend?: string | null;
  ended?: ProcessKey | null;
  cause: StopCause | null;
}

export type FollowUp =
  /** Stopped on the host: no longer wanted here (already in `data`); a pending restart is dropped. */
  | { kind: "host-stop" }
  /** Ended on its own: the restart policy decides (restart with backoff, or failed). */
  | { kind: "crash"; why: string };

export type ReportDecision =
  | { kind: "ignore"; why: "stale" | "older-process" | "end-already-recorded" | "before-failed-start" | "unchanged" | "nothing-new" }
  | {
      kind: "record";
      change: EntryChange;
      /** The ServerState columns to write. */
      data: StateData;
      /** The event recorded with it. */
      event: { state: string; message: string; data: Record<string, unknown> };
      then: FollowUp[];
    };

/** Order of states within one process's life: a snapshot never moves it back. */
const RANK: Record<string, number> = { starting: 1, ready: 2, unhealthy: 2, stopping: 3, stopped: 4, exited: 4, failed: 4 };

function date(iso: string | null | undefined): Date | null {
  const ms = epochMs(iso);
  return ms === null ? null : new Date(ms);
}

export function processOf(status: Pick<ServerStatus, "pid" | "startedAt">): ProcessKey {
  return { pid: status.pid, startedAtMs: epochMs(status.startedAt) };
}

/**
 * True when the entry records a start that never spawned a process: `failed` with no cause (the agent's own
 * `failed` always names one: crash, deadline, a stop's cause; see inferCause), written when the agent refused
 * the start (port held, bad spec) or the app could not send it a valid spec.
 */
export function neverSpawned(entry: Pick<EntrySnapshot, "state" | "cause">): boolean {
  return entry.state === "failed" && entry.cause === null;
}

/** A failure as text: the reason, and the last log lines when the agent sent them. */
export function describeFailure(status: Pick<ServerStatus, "reason" | "state" | "logTail">): string {
  const reason = status.reason ?? status.state;
  return status.logTail.length > 0 ? `${reason}${LOG_TAIL_MARK}\n${status.logTail.join("\n")}` : reason;
}

/**
 * Why a server that is not running stopped, when the agent does not say
 * (agents without the `stop-cause` feature): exited → crash; failed → the
 * readiness deadline when that is the reason, crash when a process ran,
 * none when it never started (the error says why); stopped → requested
 * (a stop made on the host is told apart by decideReport).
 */
export function inferCause(status: Pick<ServerStatus, "state" | "pid" | "reason">): StopCause | null {
  switch (status.state) {
    case "exited":
      return "crash";
    case "failed":
      if (status.reason && /^not ready within/.test(status.reason)) return "deadline";
      return status.pid !== null ? "crash" : null;
    case "stopped":
      return "requested";
    default:
      return null;
  }
}

const CAUSE_TEXTS: ReadonlySet<string> = new Set(Object.values(STOP_CAUSE_TEXT));

/**
 * What the agent's reason says beyond a cause's text: null for only that ("stopped on request"), the rest for
 * that text and more ("stopped on request; still running 2000 ms after SIGTERM, ended by a second one" → "still
 * running …"; the agent's stop() writes its cause's text first), else the reason as it is.
 */
function beyondCause(reason: string | null): string | null {
  if (reason === null || CAUSE_TEXTS.has(reason)) return null;
  for (const text of CAUSE_TEXTS) if (reason.startsWith(`${text}; `)) return reason.slice(text.length + 2);
  return reason;
}

/**
 * The event text of a state: "alpha: exited (crashed: killed by SIGKILL)", or "alpha: failed (did not load:
 * exited with code 1 while loading)" for a process that ended before it was ready. A reason that is itself only a
 * cause's text (the agent says "stopped on request" of every stop the app asked for) adds nothing to the
 * typed cause, which says why the app asked: "beta: stopped (evicted to make room)"; one that begins with it
 * adds what follows: "beta: stopped (evicted to make room: still running 2000 ms after SIGTERM, ended by a
 * second one)".
 */
export function stateText(name: string, state: string, reason: string | null, cause: StopCause | null): string {
  if (cause === null) return `${name}: ${state}${reason ? ` (${reason})` : ""}`;
  // A process that ended before it was ready never ran: "did not load", not "crashed" (its cause stays `crash`).
  const causeText = cause === "crash" && reason !== null && / while loading\b/.test(reason) ? "did not load" : STOP_CAUSE_TEXT[cause];
  const more = beyondCause(reason);
  return `${name}: ${state} (${causeText}${more ? `: ${more}` : ""})`;
}

export function decideReport(entry: EntrySnapshot & { name: string }, report: AgentReport, ctx: ReportContext): ReportDecision {
  const { status, source } = report;
  // A restart's failed start is a crash awaiting the policy's decision (ReportContext.restartStarting): read as "exited".
  const state = ctx.restartStarting && status.state === "failed" ? "exited" : status.state;
  const alive = isAlive(status.state);
  const samePid = status.pid !== null && status.pid === entry.pid;
  if (source === "snapshot") {
    // Already recorded as ended: a snapshot of the same end is not a second one.
    if (state === entry.state && !alive) return { kind: "ignore", why: "unchanged" };
    if (samePid && (RANK[state] ?? 0) < (RANK[entry.state] ?? 0)) return { kind: "ignore", why: "stale" };
    if (!samePid && status.startedAt && entry.startedAt && status.startedAt < entry.startedAt) return { kind: "ignore", why: "older-process" };
    // A "not managed" stopped status (no pid) says nothing new about a server we recorded as gone.
    if (status.pid === null && status.state === "stopped" && !isAlive(entry.state)) return { kind: "ignore", why: "nothing-new" };
  }
  // The end of a process is recorded once: a later `exited` / `failed` of it is the same crash. Unless the entry
  // went on to a live state since (a stop retried after an incomplete one shows `stopping`): that must end.
  if ((status.state === "exited" || status.state === "failed") && status.pid !== null && sameProcess(entry.ended, processOf(status)) && !isAlive(entry.state)) {
    return { kind: "ignore", why: "end-already-recorded" };
  }
  // The process before a start that never spawned: its end is recorded, and older than that failure.
  if (!alive && neverSpawned(entry) && sameProcess(entry.ended, processOf(status))) {
    return { kind: "ignore", why: "before-failed-start" };
  }
  if (state === entry.state && status.pid === entry.pid) return { kind: "ignore", why: "unchanged" };

  const previous = entry.state;
  const newProcess = status.pid !== null && status.pid !== entry.pid;
  const at = new Date(ctx.now);
  const change: EntryChange = { state, pid: status.pid, cause: null };
  if (status.startedAt) change.startedAt = status.startedAt;
  const data: StateData = {
    observed: state,
    pid: alive ? status.pid : null,
    stopIncomplete: stopIncompleteColumn(stopIncompleteOf(status)),
    ...(status.port !== null ? { port: status.port } : {}),
  };
  // A crash's planned restart stays recorded until its start's outcome is (so an app that dies in between resumes
  // it, and no reader sees "crashed, nothing planned" meanwhile): a process that runs is that outcome (the restart
  // has begun), and so is `failed`, which no restart follows (a restart's own failed start is read as `exited`
  // above, and the policy's decision written with it sets the next one).
  if (alive || state === "failed") data.nextRestartAt = null;
  let backend = entry.backend;
  if (newProcess && alive) {
    data.startedAt = date(status.startedAt) ?? at;
    data.readyAt = date(status.readyAt);
    data.stoppedAt = null;
    // How a process ended belongs to that process: a new one has not ended (lastError stays, as history).
    data.lastExitCode = null;
    data.lastSignal = null;
    backend = null;
    change.backend = null;
    data.gpuBackend = null;
  }
  const then: FollowUp[] = [];
  let cause: StopCause | null = alive ? null : (status.cause ?? inferCause(status));
  /** The event's reason: the agent's, unless it only says "requested" of a stop this app made with its own cause. */
  let reason = status.reason;
  let text: string | null = null;
  switch (status.state) {
    case "ready":
      data.readyAt = date(status.readyAt) ?? at;
      // No GPU named in the log by the time it is ready: it runs on the CPU (a later GPU line still wins).
      if (backend === null) change.backend = backend = "CPU";
      data.gpuBackend = backend;
      // A start that succeeded: errors of earlier attempts stay in the event log, not on the row.
      data.lastError = null;
      break;
    case "stopping":
      // Our own stop: the agent says only "stop requested"; say why this app asked, from the start, so an
      // eviction never reads as a stop someone requested.
      if ((report.appStopPending || sameProcess(entry.stopAsked, processOf(status))) && (entry.stopCause !== "requested" || entry.stopNote)) {
        text = `${entry.name}: stopping (${entry.stopNote ?? STOP_CAUSE_TEXT[entry.stopCause]})`;
      }
      break;
    case "stopped": {
      data.stoppedAt = at;
      // This process's end (SIGTERM, or the code it exited with), not an earlier crash's; a stop of a process
      // whose end is recorded already (a stop after an exit) says nothing new of it.
      if (status.pid !== null && !sameProcess(entry.ended, processOf(status))) {
        data.lastExitCode = status.exitCode;
        data.lastSignal = status.signal;
      }
      // Stopped on the host, not through this app (stop-metal-servers there): that is what its user wants
      // now, so it is no longer wanted running here, and not restarted as a crash would be. A stop this app
      // issued is never that, whenever its report arrives (the agent's cause, when sent, says so itself).
      const onHost =
        status.cause != null
          ? status.cause === "host-stop"
          : source === "event" && isAlive(previous) && !report.appStopPending && !sameProcess(entry.stopAsked, processOf(status)) && !ctx.closing && ctx.desired === "running";
      // Our own stop: the cause this app gave it (the agent only knows it was requested).
      const ours = report.appStopPending || sameProcess(entry.stopAsked, processOf(status));
      if (!onHost && ours && (status.cause == null || status.cause === "requested")) {
        cause = entry.stopCause;
        // The agent's generic "stopped on request" (it was not told why): the event's reason says the app's cause.
        // A reason with more in it (SIGKILL after the grace, survivors) is the agent's and stays.
        if (cause !== "requested" && (reason === null || reason === STOP_CAUSE_TEXT.requested)) reason = STOP_CAUSE_TEXT[cause];
      }
      if (onHost) {
        cause = "host-stop";
        if (ctx.desired === "running") {
          data.desired = "stopped";
          data.desiredAt = at;
          data.nextRestartAt = null;
          then.push({ kind: "host-stop" });
          text = `${entry.name}: stopped on its host, outside this app${status.reason ? ` (${status.reason})` : ""}; left stopped until it is started again`;
        }
      }
      break;
    }
    case "exited":
    case "failed":
      data.stoppedAt = at;
      data.lastExitCode = status.exitCode;
      data.lastSignal = status.signal;
      data.lastError = describeFailure(status);
      break;
  }
  if (!alive) change.ended = processOf(status);
  change.cause = cause;
  data.cause = cause;
  text ??= status.state === "ready" && previous === "unhealthy" ? `${entry.name}: ready again` : stateText(entry.name, state, reason, cause);
  if (status.state === "exited") then.push({ kind: "crash", why: status.reason ?? "exited" });
  return {
    kind: "record",
    change,
    data,
    event: {
      state,
      message: text,
      data: { pid: status.pid, port: status.port, previous, reason, cause, exitCode: status.exitCode, signal: status.signal, ...(status.logTail.length && !alive ? { logTail: status.logTail } : {}) },
    },
    then,
  };
}
