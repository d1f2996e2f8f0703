/**
 * The fleet's event stream: state changes, actions, errors and host (link)
 * events are persisted as Event rows and pushed to live subscribers; agent
 * log lines are only pushed and kept in a bounded ring per model (they are
 * already on the host, in the server's log file).
 *
 * Stream ids order everything: a persisted event's id is its row id ("42"),
 * a log line's id is the last persisted id when it arrived plus a sequence
 * number ("42.7"), so "42" < "42.7" < "42.8" < "43". A subscriber resuming
 * with `lastEventId` is subscribed live FIRST, then gets the persisted events
 * and the ring's log lines after that id, then the live queue minus what the
 * replay already gave: no gap, no duplicate.
 *
 * Appends are serialized, and a persisted event is published only once its
 * row is written, so live order equals id order. Appends made in the same
 * turn of the event loop, or while a write is in flight, are committed
 * together in the next transaction (a start of 16 servers makes 32 state
 * changes in a few hundred ms; one commit each was most of the control
 * plane's cost). An append may carry the writes it
 * describes (a server's new state), committed in the same transaction: the
 * event and the state it reports are recorded together or not at all.
 */
import type { Db } from "~/server/db/client";
import { runStatements, type SqlOutcome, type SqlStatement } from "~/server/db/sql-driver";
import { insertEventSql, type EventRowInput } from "./state-sql";
import type { Logger } from "~/server/log/logger";
import { ServiceError } from "../errors";

/** The kinds of persisted events, as the Event row's `kind` column holds them. */
export const EVENT_KINDS = ["state", "action", "error", "host"] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** A persisted event (an Event row). */
export interface RecordedEvent {
  type: "event";
  id: number;
  at: string;
  kind: EventKind;
  modelId: string | null;
  hostId: string | null;
  /** For kind "state": the server state (stopped, starting, ready, …); for "host": the link state. */
  state: string | null;
  message: string;
  data: unknown;
}

/** A line of a server's log (not persisted). */
export interface LogLineEvent {
  type: "log";
  at: string;
  modelId: string;
  hostId: string | null;
  line: string;
  /** The agent's number for the line (see `logs`'s `seq`), when the agent sends one. */
  seq?: number;
}

export type FleetEvent = RecordedEvent | LogLineEvent;

/** One item of a subscription: the id to resume from, and the event. */
export interface StreamItem {
  id: string;
  event: FleetEvent;
}

export interface EventInput {
  kind: EventKind;
  modelId?: string | null;
  hostId?: string | null;
  state?: string | null;
  message: string;
  data?: unknown;
}

export interface SubscribeOptions {
  /** Resume after this stream id ("42" or "42.7"); null or absent: live only. */
  lastEventId?: string | null;
  /** Only these models' events (host-wide events, with no model, are always included). */
  modelIds?: string[];
  /** Include log lines (default false). */
  logs?: boolean;
  signal?: AbortSignal;
}

/** Writes committed with an event (state-sql.ts): made fresh for each attempt (a batch that fails is retried item by item). */
export type WithWrites = () => SqlStatement[];

export interface EventBus {
  /**
   * Persists an event (and `options.with`'s writes, in the same transaction)
   * and publishes it; resolves with the row. Rejects, having written nothing
   * of this append, when its writes or its row cannot be written. Appends
   * made in one synchronous run are committed in one transaction (one by
   * one only when that transaction fails): restarts.ts records a crash and
   * its restart decision so, and relies on it.
   */
  append(input: EventInput, options?: { with?: WithWrites }): Promise<RecordedEvent>;
  /** Publishes a log line and keeps it in the model's ring. */
  logLine(modelId: string, hostId: string | null, line: string, at?: string, seq?: number): void;
  /** The ring's last `limit` lines of a model (oldest first). */
  recentLogs(modelId: string, limit?: number): StreamItem[];
  subscribe(options?: SubscribeOptions): AsyncIterable<StreamItem>;
  /** Stream id of the newest persisted event ("0" when there is none). */
  lastEventId(): string;
  /** Waits for pending appends. */
  flush(): Promise<void>;
  /** Ends every subscription; later appends are still written but not published. */
  close(): Promise<void>;
}

export interface EventBusOptions {
  db: Db;
  log: Logger;
  /** Log lines kept per model for resumes (default 1000). */
  ringSize?: number;
  /** A subscriber's queue: beyond this, its oldest log lines are dropped (default 2000). */
  queueSize?: number;
  /** Persisted events a subscriber may fall behind before its stream ends, to be resumed by id (default 20 000). */
  maxPendingEvents?: number;
  /** Persisted events read per replay page (default 500). */
  replayPageSize?: number;
  /** A resume replays at most this many persisted events (the newest); older ones are history, not live state (default 5000). */
  maxReplay?: number;
  /** Events kept in the table; older rows are pruned at start (default 100 000). */
  keepEvents?: number;
}

interface Pending {
  input: EventInput;
  with: WithWrites | undefined;
  resolve: (event: RecordedEvent) => void;
  reject: (err: unknown) => void;
}

interface Cursor {
  db: number;
  seq: number;
}

interface Item {
  cursor: Cursor;
  event: FleetEvent;
}

interface Subscriber {
  queue: Item[];
  wake: (() => void) | null;
  ended: Error | null;
  done: boolean;
  modelIds: Set<string> | null;
  logs: boolean;
  pendingEvents: number;
  droppedLogs: number;
}

function compare(a: Cursor, b: Cursor): number {
  return a.db !== b.db ? a.db - b.db : a.seq - b.seq;
}

function formatCursor(c: Cursor): string {
  return c.seq === 0 ? String(c.db) : `${c.db}.${c.seq}`;
}

/** "42" or "42.7" → cursor; BAD_REQUEST otherwise. */
export function parseStreamId(id: string): { db: number; seq: number } {
  const m = /^(\d{1,15})(?:\.(\d{1,15}))?$/.exec(id.trim());
  if (!m) {
    throw ServiceError.invalid([{ path: "lastEventId", message: `must be an event id such as "42" or "42.7" (got ${JSON.stringify(id)})` }]);
  }
  return { db: Number(m[1]), seq: m[2] === undefined ? 0 : Number(m[2]) };
}

/** Server states a person must look at: the event goes to the app's log at warn. */
const WARN_STATES = new Set(["failed", "unhealthy"]);

/**
 * A recorded event in the app's log too: whoever reads the container's log
 * (`docker logs`, journald) sees the app's decisions (start all, restarts
 * and their backoff, idle unloads, evictions, key changes), the links'
 * changes and every failure with its reason, not only the dashboard.
 * Errors, failed or unhealthy servers and crashes at warn; actions and
 * host events at info; other server states at debug, since each agent
 * logs its own servers' states (the local one in this log, an ssh host's
 * as "agent stderr" lines). Log lines of servers are not events and are
 * not logged here (they are in each server's log file).
 */
function logEvent(log: Logger, e: RecordedEvent): void {
  const cause = typeof e.data === "object" && e.data !== null ? (e.data as { cause?: unknown }).cause : undefined;
  const warn = e.kind === "error" || (e.state !== null && WARN_STATES.has(e.state)) || cause === "crash";
  const fields: Record<string, unknown> = { event: e.id, kind: e.kind };
  if (e.modelId) fields.modelId = e.modelId;
  if (e.hostId) fields.hostId = e.hostId;
  if (e.state) fields.state = e.state;
  if (typeof cause === "string") fields.cause = cause;
  if (warn) log.warn(e.message, fields);
  else if (e.kind === "state") log.debug(e.message, fields);
  else log.info(e.message, fields);
}

/** An Event row as the stream and the history show it (`data` parsed; text that is not JSON stays text). */
export function rowToEvent(row: { id: number; at: Date; kind: string; modelId: string | null; hostId: string | null; state: string | null; message: string; data: string | null }): RecordedEvent {
  let data: unknown = null;
  if (row.data !== null) {
    try {
      data = JSON.parse(row.data);
    } catch {
      data = row.data;
    }
  }
  return { type: "event", id: row.id, at: row.at.toISOString(), kind: row.kind as EventKind, modelId: row.modelId, hostId: row.hostId, state: row.state, message: row.message, data };
}

export async function createEventBus(options: EventBusOptions): Promise<EventBus> {
  const { db, log } = options;
  const ringSize = options.ringSize ?? 1000;
  const queueSize = options.queueSize ?? 2000;
  const maxPendingEvents = options.maxPendingEvents ?? 20_000;
  const pageSize = options.replayPageSize ?? 500;

  const maxReplay = options.maxReplay ?? 5000;
  const keepEvents = options.keepEvents ?? 100_000;

  const newest = await db.event.aggregate({ _max: { id: true } });
  let lastDbId = newest._max.id ?? 0;
  // The event log is a history, not an archive: bound the table so it cannot grow without end.
  if (lastDbId > keepEvents) {
    const pruned = await db.event.deleteMany({ where: { id: { lte: lastDbId - keepEvents } } });
    if (pruned.count > 0) log.info("pruned old events", { count: pruned.count, kept: keepEvents });
  }
  let logSeq = 0;
  /** The write chain: never rejects; `flush` waits for it. */
  let writes: Promise<void> = Promise.resolve();
  /** Appends waiting for the next transaction. */
  let pending: Pending[] = [];
  let closed = false;
  const rings = new Map<string, Item[]>();
  const subscribers = new Set<Subscriber>();

  const wants = (sub: Subscriber, event: FleetEvent): boolean => {
    if (event.type === "log" && !sub.logs) return false;
    if (sub.modelIds && event.modelId !== null && !sub.modelIds.has(event.modelId)) return false;
    return true;
  };

  const end = (sub: Subscriber, err: Error | null) => {
    if (sub.done) return;
    sub.done = true;
    sub.ended = err;
    subscribers.delete(sub);
    sub.wake?.();
  };

  const push = (sub: Subscriber, item: Item) => {
    if (sub.done || !wants(sub, item.event)) return;
    if (item.event.type === "event") sub.pendingEvents += 1;
    sub.queue.push(item);
    if (sub.queue.length > queueSize) {
      // A slow client loses log lines (oldest first), never state: those it can resume by id.
      const i = sub.queue.findIndex((q) => q.event.type === "log");
      if (i >= 0) {
        sub.queue.splice(i, 1);
        sub.droppedLogs += 1;
      } else if (sub.pendingEvents > maxPendingEvents) {
        end(sub, new ServiceError("UNAVAILABLE", `the event stream fell ${sub.pendingEvents} events behind; resubscribe with the last event id to resume`));
        return;
      }
    }
    sub.wake?.();
  };

  const publish = (item: Item) => {
    if (closed) return;
    for (const sub of subscribers) push(sub, item);
  };

  /** The row to insert: its time is set here, so the published event needs nothing read back but the id. */
  const rowOf = (input: EventInput): EventRowInput => ({
    at: new Date(),
    kind: input.kind,
    modelId: input.modelId ?? null,
    hostId: input.hostId ?? null,
    state: input.state ?? null,
    message: input.message.slice(0, 8192),
    data: input.data === undefined || input.data === null ? null : JSON.stringify(input.data),
  });

  const settle = (p: Pending, row: EventRowInput, inserted: SqlOutcome) => {
    const id = Number((inserted as { rows: unknown[][] }).rows[0]![0]);
    // Set and publish in one step, so log lines that arrive later carry this id.
    lastDbId = Math.max(lastDbId, id);
    const event = rowToEvent({ id, ...row });
    publish({ cursor: { db: id, seq: 0 }, event });
    logEvent(log, event);
    p.resolve(event);
  };

  /** The appends' writes and event rows in one transaction (a lone event needs none); each row's insert result, in order. */
  const commit = async (items: Pending[], rows: EventRowInput[]): Promise<SqlOutcome[]> => {
    const statements: SqlStatement[] = [];
    const at: number[] = [];
    items.forEach((p, i) => {
      statements.push(...(p.with?.() ?? []));
      at.push(statements.length);
      statements.push(insertEventSql(rows[i]!));
    });
    const results = await runStatements(db, statements);
    return at.map((i) => results[i]!);
  };

  /** Writes and publishes these appends together; when that fails, each on its own, so one bad item (its model deleted meanwhile) does not lose the others. */
  const writeItems = async (items: Pending[]): Promise<void> => {
    const rows = items.map((p) => rowOf(p.input));
    try {
      const inserted = await commit(items, rows);
      items.forEach((p, i) => settle(p, rows[i]!, inserted[i]!));
    } catch (err) {
      if (items.length > 1) {
        for (const p of items) await writeItems([p]);
        return;
      }
      log.warn("event could not be written", { kind: items[0]!.input.kind, modelId: items[0]!.input.modelId, error: err });
      items[0]!.reject(err);
    }
  };

  /** Everything appended since the last transaction. */
  const writeBatch = async (): Promise<void> => {
    const batch = pending;
    pending = [];
    if (batch.length > 0) await writeItems(batch);
  };

  const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

  const append = (input: EventInput, options: { with?: WithWrites } = {}): Promise<RecordedEvent> =>
    new Promise<RecordedEvent>((resolve, reject) => {
      pending.push({ input, with: options.with, resolve, reject });
      // The first append since the last transaction started queues one; later ones join it, up to the end of
      // this turn of the event loop (setImmediate): the reports of servers the agent handled in one turn (a
      // batch of spawns) make one transaction, not one each.
      if (pending.length === 1) writes = writes.then(nextTurn).then(writeBatch).catch((err: unknown) => log.error("event write failed", { error: err }));
    });

  const logLine = (modelId: string, hostId: string | null, line: string, at = new Date().toISOString(), agentSeq?: number) => {
    const event: LogLineEvent = { type: "log", at, modelId, hostId, line };
    if (agentSeq !== undefined) event.seq = agentSeq;
    const item: Item = { cursor: { db: lastDbId, seq: ++logSeq }, event };
    let ring = rings.get(modelId);
    if (!ring) rings.set(modelId, (ring = []));
    ring.push(item);
    if (ring.length > ringSize) ring.splice(0, ring.length - ringSize);
    publish(item);
  };

  const toItem = (i: Item): StreamItem => ({ id: formatCursor(i.cursor), event: i.event });

  async function replay(after: Cursor, sub: Subscriber): Promise<Item[]> {
    const persisted: Item[] = [];
    const modelFilter = sub.modelIds ? { OR: [{ modelId: { in: [...sub.modelIds] } }, { modelId: null }] } : {};
    // The replay ends at what was published when it began (the subscriber is already live, so everything
    // after reaches it live). Without this cut, an event committed while the rows were read, followed by a
    // log line, was lost: the line came in the replay, and the event, live, looked older than it.
    const cut: Cursor = { db: lastDbId, seq: logSeq };
    // "42.7" resumes after event 42: persisted events from 43 on; a client further behind than
    // maxReplay gets the newest maxReplay (it refetches status on reconnect anyway).
    let from = Math.max(after.db, lastDbId - maxReplay);
    for (;;) {
      const rows = await db.event.findMany({ where: { id: { gt: from, lte: cut.db }, ...modelFilter }, orderBy: { id: "asc" }, take: pageSize });
      for (const r of rows) persisted.push({ cursor: { db: r.id, seq: 0 }, event: rowToEvent(r) });
      if (rows.length < pageSize) break;
      from = rows[rows.length - 1]!.id;
    }
    const logs: Item[] = [];
    if (sub.logs) {
      for (const [modelId, ring] of rings) {
        if (sub.modelIds && !sub.modelIds.has(modelId)) continue;
        for (const i of ring) if (compare(i.cursor, after) > 0 && compare(i.cursor, cut) <= 0) logs.push(i);
      }
    }
    return [...persisted, ...logs].sort((a, b) => compare(a.cursor, b.cursor));
  }

  async function* subscribe(opts: SubscribeOptions = {}): AsyncGenerator<StreamItem> {
    const after = opts.lastEventId ? parseStreamId(opts.lastEventId) : null;
    const signal = opts.signal;
    const sub: Subscriber = {
      queue: [],
      wake: null,
      ended: null,
      done: false,
      modelIds: opts.modelIds ? new Set(opts.modelIds) : null,
      logs: opts.logs ?? false,
      pendingEvents: 0,
      droppedLogs: 0,
    };
    if (closed || signal?.aborted) return;
    // Live first, so nothing that happens during the replay is missed.
    subscribers.add(sub);
    const onAbort = () => end(sub, null);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      let last: Cursor | null = after;
      if (after) {
        for (const item of await replay(after, sub)) {
          if (sub.done) break;
          last = item.cursor;
          yield toItem(item);
        }
      }
      for (;;) {
        if (signal?.aborted) break;
        const item = sub.queue.shift();
        if (item) {
          if (item.event.type === "event") sub.pendingEvents -= 1;
          if (last && compare(item.cursor, last) <= 0) continue; // the replay had it
          last = item.cursor;
          yield toItem(item);
          continue;
        }
        if (sub.done) break;
        await new Promise<void>((resolve) => (sub.wake = resolve));
        sub.wake = null;
      }
      if (sub.ended) throw sub.ended;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      end(sub, null);
    }
  }

  return {
    append,
    logLine,
    recentLogs: (modelId, limit = ringSize) => (rings.get(modelId) ?? []).slice(-limit).map(toItem),
    subscribe: (opts) => subscribe(opts),
    lastEventId: () => String(lastDbId),
    flush: async () => {
      await writes;
    },
    close: async () => {
      await writes;
      closed = true;
      for (const sub of [...subscribers]) end(sub, null);
    },
  };
}
