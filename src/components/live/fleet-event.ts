/**
 * A fleet event as the dashboard reads it, from one item of the
 * `servers.events` subscription (a tracked `{id, data}` envelope around the
 * service's FleetEvent). Tolerant by design: an event of a kind the
 * dashboard does not know is skipped, never a crash.
 */

export interface FleetEventView {
  /** Stream id ("42", "42.7"), when tracked. */
  id: string | null;
  kind: "state" | "action" | "error" | "host" | "log";
  at: string | null;
  modelId: string | null;
  hostId: string | null;
  state: string | null;
  message: string;
  pid: number | null | undefined;
  reason: string | null;
  /** Why it stopped or exited (STOP_CAUSES), for state events that say. */
  cause: string | null | undefined;
  line: string | null;
  /** A log line's number from the host agent (orders it against a fetched tail). */
  seq: number | null;
  /** An action event of a planned restart after a crash ("restarting in 1.0 s"): its delay (ms, data.delayMs). */
  restartInMs?: number;
  /**
   * An action event of a restart after a crash as it begins ("restarting after a crash (2 restarts since it was
   * last started by hand)"): the model's restart count since its last start by hand, this one included
   * (data.restarts, as servers.status's `restarts` then reads).
   */
  restarts?: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null;
const str = (v: unknown): string | null => (typeof v === "string" ? v : null);

export function toFleetEvent(raw: unknown): FleetEventView | null {
  if (!isObj(raw)) return null;
  // tracked(id, event) arrives as {id, data}; an untracked event is the event itself.
  const id = str(raw.id);
  const ev: unknown = isObj(raw.data) && ("type" in raw.data || "kind" in raw.data) ? raw.data : raw;
  if (!isObj(ev)) return null;
  const data = isObj(ev.data) ? ev.data : {};
  if (ev.type === "log") {
    return { id, kind: "log", at: str(ev.at), modelId: str(ev.modelId), hostId: str(ev.hostId), state: null, message: "", pid: undefined, reason: null, cause: undefined, line: str(ev.line) ?? "", seq: typeof ev.seq === "number" ? ev.seq : null };
  }
  const kind = ev.kind;
  if (kind !== "state" && kind !== "action" && kind !== "error" && kind !== "host") return null;
  const pid = typeof data.pid === "number" ? data.pid : data.pid === null ? null : undefined;
  const message = str(ev.message) ?? "";
  return {
    id,
    kind,
    at: str(ev.at),
    modelId: str(ev.modelId),
    hostId: str(ev.hostId),
    state: str(ev.state),
    message,
    pid,
    reason: str(data.reason) ?? str(data.lastError) ?? (message || null),
    cause: "cause" in data ? str(data.cause) : undefined,
    line: null,
    seq: null,
    ...(kind === "action" && typeof data.delayMs === "number" ? { restartInMs: data.delayMs } : {}),
    ...(kind === "action" && typeof data.restarts === "number" ? { restarts: data.restarts } : {}),
  };
}

/** Whether an event carries what patchRowFromRestartEvent patches (a restart planned, or one beginning). */
export function isRestartEvent(event: FleetEventView): boolean {
  return event.restartInMs !== undefined || event.restarts !== undefined;
}

/**
 * A row as a restart's action events leave it, until the status is read again:
 * - the one that plans it ("restarting in 1.0 s", written with the crash's own event): a crashed row's restart due
 *   time. Without it the row read "crashed" with nothing planned for that moment, and the Playground offered Start
 *   (a trial saw it for 0.1-0.3 s);
 * - the one that begins it ("restarting after a crash (2 restarts since …)", before its `starting`): the restart
 *   count. Without it the RESTARTS cell changed about 0.2 s after the READY badge of a model that loads fast.
 * Other events leave the row as it is. Pure.
 */
export function patchRowFromRestartEvent<R extends { state: string; nextRestartAt: string | null; restarts: number }>(row: R, event: FleetEventView, nowMs: number): R {
  let out = row;
  if (event.restarts !== undefined && event.restarts !== row.restarts) out = { ...out, restarts: event.restarts };
  if (event.restartInMs !== undefined && row.state === "exited") {
    const from = event.at !== null ? Date.parse(event.at) : NaN;
    out = { ...out, nextRestartAt: new Date((Number.isNaN(from) ? nowMs : from) + event.restartInMs).toISOString() };
  }
  return out;
}

/** The status row's fields a state event changes (servers.status). */
export interface StateRowFields {
  state: string;
  pid: number | null;
  cause: string | null;
  lastError: string | null;
  startedAt: string | null;
  desired?: string;
}

/**
 * A status row as a state event leaves it, until the status is read again (250 ms later): the state, pid and
 * cause it says; a crash's or failure's reason as the last error (cleared once ready); and for a new process
 * (a pid other than the row's), its start at the event's time, so that the uptime of a server that is loading
 * again after a restart does not count from the process before it (a trial read "23 s" on a LOADING row).
 * A stop with a cause (stopped on request, at app shutdown, on its host, idle, evicted) leaves it not wanted
 * running: its row read "queued" (stopped, wanted running) after the app's shutdown, whose status is not read
 * again (a trial). `isCause` keeps only known stop causes. Pure.
 */
export function patchRowFromStateEvent<R extends StateRowFields>(row: R, event: FleetEventView & { state: string }, isCause: (c: string) => boolean): R {
  const { state } = event;
  const newProcess = event.pid !== undefined && event.pid !== null && event.pid !== row.pid;
  const cause = event.cause !== undefined ? (event.cause !== null && isCause(event.cause) ? event.cause : null) : row.cause;
  return {
    ...row,
    state,
    pid: event.pid !== undefined ? event.pid : row.pid,
    cause,
    ...(state === "stopped" && event.cause !== undefined && cause !== null && row.desired !== undefined ? { desired: "stopped" } : {}),
    lastError: state === "exited" || state === "failed" ? (event.reason ?? row.lastError) : state === "ready" ? null : row.lastError,
    ...(newProcess ? { startedAt: event.at ?? row.startedAt } : {}),
  };
}
