/**
 * One model's server as the app holds it: what was last recorded about its
 * process, the command in flight, its timers, and (for the gateway) its
 * requests in flight and last use. One entry per model, kept by the server
 * table (server-table.ts); decisions about it are made by report-decision.ts
 * from a plain snapshot of it.
 */
import { isAlive, type StopCause } from "synapse-host-agent/server-states";

/** One gateway request counted on a ServerEntry (ServerEntry.beginRequest). Times are epoch ms. */
export interface RequestUse {
  /** It got its place and goes to the model's server: last used at `now`, no idle countdown (nor its timer). Once. */
  served(now: number): void;
  /** It ended (idempotent): out of the count; last used at `now` if it was served. */
  end(now: number): void;
}

/** A process of a server, told apart from a later one with a reused pid by its start time. */
export interface ProcessKey {
  pid: number | null;
  /** Epoch ms the OS says it started; null when unknown. */
  startedAtMs: number | null;
}

/** True when both name the same process: same start time, and the same pid where both know it. */
export function sameProcess(a: ProcessKey | null, b: ProcessKey | null): boolean {
  if (!a || !b || a.startedAtMs === null || b.startedAtMs === null) return false;
  if (a.startedAtMs !== b.startedAtMs) return false;
  return a.pid === null || b.pid === null || a.pid === b.pid;
}

/** An ISO time as epoch ms; null for null or unreadable text. */
export function epochMs(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? t : null;
}

/** The outcome of one start, stop or restart of one model. */
export interface ServerResult {
  modelId: string;
  name: string;
  host: string;
  port: number;
  state: string;
  pid: number | null;
  error: string | null;
  /** What the memory plan said of this start; absent when none was made (stops, restarts after a crash). */
  memory?: StartMemoryNote;
  /** Models stopped (cause `evicted`) to make room for this start. */
  evicted?: string[];
  /**
   * A start's or restart's only, of a model that is disabled and now runs or is starting: it was started all the same (to try it on its
   * own port), and the gateway refuses its requests (409 model_disabled) until it is enabled; `message` says
   * so and how to enable it (gateway/model-disabled.ts). Absent for an enabled model.
   */
  disabled?: { message: string };
  /** A start not made: the model's row, read as the start began, failed the caller's `startIf` (`state` is its recorded one). */
  skipped?: true;
  /**
   * A start's only: it did not reach the host's agent, or its answer did not come back: the host's link is down,
   * dropped or timed out, or could not be made (`error` is the link's, naming the host). Absent otherwise.
   */
  unreachable?: true;
  /**
   * A start-all's only: the model crashed and waits for the restart its restart policy planned, due then (ISO;
   * `state` "exited"). Start-all leaves it to that restart: a start would reset its crash count and history and
   * defeat the policy's limit (a crash loop would never end failed). Not a failure.
   */
  restartAt?: string;
  /**
   * A stop that found nothing to stop: as this app knew the model when the stop was asked, no process of it
   * ran (stopped, exited or failed) and no start of it was planned or in flight. Absent on starts and on
   * stops that ended a process.
   */
  notRunning?: true;
  /**
   * A stop's only: the recorded state it found when nothing ran and it recorded the model stopped
   * (`failed`: a start that could not start, or a crash loop given up; `exited`: a crash not restarted).
   * The model's last error stays as history; its cause is now the stop's. Absent otherwise.
   */
  previousState?: "failed" | "exited";
  /**
   * A stop's only: the model had crashed and waited for its restart, which this stop cancelled (the last
   * command wins). `dueAt`: when it was due (ISO); `dueInMs`: how far off that was when the stop was
   * given (0 or less: it was due then). Such a stop has no `notRunning`: it did stop something.
   */
  restartCancelled?: { dueAt: string; dueInMs: number };
  /**
   * A stop's only: its host could not be reached. The stop is recorded (the model is wanted stopped) and is made,
   * with its cause, when the host is reachable again; `state` and `pid` are the last known. Not a failure.
   * `host`: the host's name; `reason`: why it could not be reached (the link's error).
   */
  stopPending?: { host: string; reason: string };
  /**
   * A Restart's only: its host could not be reached. The restart is recorded (wanted running) and is made when the
   * host is reachable again (ServerEntry.pendingRestart); `state` and `pid` are the last known. Not a failure.
   * `host`: the host's name; `reason`: why it could not be reached (the link's error).
   */
  restartPending?: { host: string; reason: string };
}

/** A start's memory plan, as results and the API report it. Bytes; null where the verdict has no figure. */
export interface StartMemoryNote {
  /** fits; refused (not started); forced (started over the budget); unchecked (no estimate or no budget); running (already was). */
  verdict: "fits" | "refused" | "forced" | "unchecked" | "running";
  /** The refusal or force with its numbers, or why it was not checked; null when it fits. */
  message: string | null;
  neededBytes: number | null;
  /** Left on the host before this start. */
  leftBytes: number | null;
  budgetBytes: number | null;
  /**
   * A refusal's only: whether it could fit later without anyone acting (on-demand models unloading, stops and
   * starts under way ending); false: the models that stay leave no room, and only a person can make it (the
   * gateway then tells clients not to retry). Absent on other verdicts.
   */
  mayFitLater?: boolean;
}

/** A start or stop this app issued to the agent and has not had the answer of yet. */
export interface Operation {
  kind: "start" | "stop";
  /** The entry's command number when it was issued (ServerEntry.commandSeq). */
  seq: number;
  promise: Promise<ServerResult>;
}

/** What a decision needs to know about an entry: plain data, copied at one moment. */
export interface EntrySnapshot {
  state: string;
  pid: number | null;
  startedAt: string | null;
  backend: string | null;
  /** The process whose end (exit, failure, stop) is already recorded. */
  ended: ProcessKey | null;
  /** Why it is not running (null while it runs, and for a `failed` start that never spawned a process). */
  cause: StopCause | null;
  /** The process this app last asked to stop. */
  stopAsked: ProcessKey | null;
  /** Why this app asked for that stop (`requested`, or `idle` / `evicted` from the gateway). */
  stopCause: StopCause;
  /** That cause in words with its particulars ("evicted to make room for fresh"); absent or null: the cause's own text. */
  stopNote?: string | null;
}

export class ServerEntry {
  readonly modelId: string;
  hostId: string;
  /** The model's name, also the server's id on its host. */
  name: string;

  /** Loaded from the database on first use (server-table.ts). */
  loaded = false;
  /** This model's record writes, in order. */
  chain: Promise<unknown> = Promise.resolve();

  // ---- last recorded --------------------------------------------------------
  /** The agent's state as last recorded (SERVER_STATES). */
  state = "stopped";
  /** The agent's pid for the last process (kept after it ended). */
  pid: number | null = null;
  /** When the last process started (ISO, as the agent said). */
  startedAt: string | null = null;
  /** GPU backend seen in the log ("Metal", "CPU", …). */
  backend: string | null = null;
  /** The process whose end is recorded: a later report of the same end is not a new one. */
  ended: ProcessKey | null = null;
  /** Why it is not running (null while it runs, and when `failed` by a start that never spawned a process: see neverSpawned). */
  cause: StopCause | null = null;

  // ---- commands -------------------------------------------------------------
  /** Number of the last command accepted for this model (start, stop, restart); a result of an older one is stale. */
  commandSeq = 0;
  /** The start or stop in flight, if any. */
  op: Operation | null = null;
  /**
   * The start in flight is a restart after a crash (command number `seq` of it; null otherwise): its failure is
   * a crash the restart policy decides on from the start's outcome, so a live report of it reads "exited".
   */
  restartStartSeq: number | null = null;
  /** Stop calls issued to the agent and not yet answered: a stop reported meanwhile is ours, not one made on the host. */
  stopsInFlight = 0;
  /** The process this app last asked to stop: its stop is ours even when reported after our call gave up waiting. */
  stopAsked: ProcessKey | null = null;
  /** Why this app asked for its last stop: the cause recorded when that stop is reported. */
  stopCause: StopCause = "requested";
  /** Its particulars, for the "stopping" event ("evicted to make room for fresh"); null: none. */
  stopNote: string | null = null;
  /**
   * A stop recorded (wanted stopped) whose call could not reach the host: the reconcile makes it once the host is
   * back, with this cause and note (an idle unload stays `idle`, not `requested`). Cleared by the next stop issued
   * and by a start wanted meanwhile (the last command wins).
   */
  pendingStop: { cause: StopCause; note: string | null } | null = null;
  /**
   * A Restart by hand given while its host could not be reached (fleet.ts restart): recorded, and made by the
   * reconcile once the host is back (reconciler.ts `restart`: a stop and a start of the process then found
   * running; none running, its start is the restart). Cleared by the next start sent for it, and by a stop or a
   * change to not wanted (the last command wins). In memory only: an app that restarts before the host is back
   * does not make it.
   */
  pendingRestart = false;
  /**
   * The last error written to the row because its host could not be reached (a start sent while the link was
   * down): about the host, not the model, so the reconcile clears it once the host answers again. Null: none.
   */
  hostErrorNoted: string | null = null;
  /**
   * A user's start is wanted and waits for its memory plan (start-plan.ts) in the host's queue: the
   * reconciler must not start it meanwhile (the plan may refuse it).
   */
  planning = false;
  /**
   * Number of the last change of what users want (wanted running or stopped) given for this model. An
   * on-demand start records "wanted running" beside its spawn (fleet.ts start); a stop given meanwhile takes
   * a newer number, and the start's write, when its turn comes, is then dropped: the last command wins.
   */
  desiredSeq = 0;
  /**
   * The settings the last start this app issued was given (settings-hash.ts); written with a `failed` state
   * (ServerState.failedSpecHash), so that a saved change can be told from none. Null before a start.
   */
  startSettingsHash: string | null = null;

  // ---- timers ---------------------------------------------------------------
  /** A restart after a crash, when one is scheduled. */
  restartTimer: NodeJS.Timeout | null = null;
  /**
   * Epoch ms the scheduled restart is (or was) due: set with its timer, kept after the timer fires until
   * the restart's start is issued (its turn in the host's queue), cleared by clearRestart. Null: none.
   */
  restartDueAtMs: number | null = null;
  /** The error of the last restart that could not reach the host (restarts.afterUnreachable), null once one did. */
  restartUnreachable: string | null = null;
  /**
   * A restart that a change of what is wanted (stopped: wantStoppedMany) cancelled, due at this epoch ms, for
   * the stop that follows to report (issueStop, which clears it; a later start clears it too). Null: none.
   */
  cancelledRestartAtMs: number | null = null;
  /** The gateway's idle unload, due at `idleUnloadAt` (armed by the gateway; cleared when a request is served and at shutdown). */
  idleTimer: NodeJS.Timeout | null = null;

  // ---- for the gateway ----------------------------------------------------------
  // Kept here only, not in the database: after an app restart they start again
  // (none in flight, never used, idle clock from when the gateway first sees it).
  /** Requests the gateway holds for this model right now: queued, waiting for a start, or being answered. */
  inFlight = 0;
  /**
   * Epoch ms of the last use by a gateway request that was served (it got a place and went to the model's
   * server): its start, then its end (a stream counts until it ends); null: none since the app started.
   */
  lastUsedAt: number | null = null;
  /** Epoch ms at which the gateway's idle unloader stops this model; null: not counting down. */
  idleUnloadAt: number | null = null;

  constructor(modelId: string, hostId: string, name: string) {
    this.modelId = modelId;
    this.hostId = hostId;
    this.name = name;
  }

  /** Accepts a new command: older operations' results are stale from now on. Returns its number. */
  nextCommand(): number {
    this.commandSeq += 1;
    return this.commandSeq;
  }

  /** True when `seq` is the last command accepted. */
  isCurrent(seq: number): boolean {
    return seq === this.commandSeq;
  }

  /** Puts `op` in flight; it leaves the slot when it settles (unless a newer one took it). */
  track(op: Operation): Operation {
    this.op = op;
    const leave = () => {
      if (this.op === op) this.op = null;
    };
    // Both ways: a rejection is the caller's to handle; this must not add an unhandled one.
    op.promise.then(leave, leave);
    return op;
  }

  /** A restart or a start/stop is pending: the reconciler leaves the model to it. */
  get busy(): boolean {
    return this.op !== null || this.restartTimer !== null || this.planning;
  }

  get alive(): boolean {
    return isAlive(this.state);
  }

  clearRestart(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.restartDueAtMs = null;
  }

  /**
   * What is no longer wanted running: a pending restart is cancelled (clearRestart) and its due time
   * (epoch ms) kept in cancelledRestartAtMs for the stop that reports it.
   */
  cancelRestartForStop(): void {
    if (this.restartDueAtMs !== null) this.cancelledRestartAtMs = this.restartDueAtMs;
    this.clearRestart();
  }

  /**
   * Counts a gateway request in flight (queued, waiting for a start, or being answered). Its last use is
   * not touched until it is served: a request the gateway refuses (409, 429, 503) or one whose client left
   * before it got a place leaves `lastUsedAt` and the idle countdown as they were.
   */
  beginRequest(): RequestUse {
    this.inFlight += 1;
    let served = false;
    let ended = false;
    return {
      served: (now) => {
        if (ended || served) return;
        served = true;
        this.lastUsedAt = now;
        this.clearIdle();
      },
      end: (now) => {
        if (ended) return;
        ended = true;
        this.inFlight -= 1;
        if (served) this.lastUsedAt = now;
      },
    };
  }

  /** No idle countdown: its time and its timer go. */
  clearIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.idleUnloadAt = null;
  }

  /** Stops every timer (shutdown). */
  clearTimers(): void {
    this.clearRestart();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  snapshot(): EntrySnapshot {
    return { state: this.state, pid: this.pid, startedAt: this.startedAt, backend: this.backend, ended: this.ended ? { ...this.ended } : null, cause: this.cause, stopAsked: this.stopAsked ? { ...this.stopAsked } : null, stopCause: this.stopCause, stopNote: this.stopNote };
  }
}
