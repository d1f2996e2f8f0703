/**
 * GatewayFleet over today's fleet service (`Fleet`, its database and event
 * bus). The only file of the gateway that knows how the fleet is built.
 *
 * The registry is read into a snapshot (models, hosts, server states,
 * defaults) so that a request costs no database query. A fleet event about
 * a model (its state changes, a start or stop asked for) marks that model
 * changed: its row alone is read again (one query, with its host and server
 * state) and put into the snapshot; an event about no model (a host's link,
 * start all) marks the whole snapshot stale. Either is read when something
 * needs it: at once (one read per burst of events) while requests wait for a
 * change, otherwise by the next request or idle sweep. A cold request after a
 * stop paid a read of every model, the settings and the fingerprint (4-6 ms
 * in the app) where its model's row is what changed (~2 ms); and that row,
 * read for the request, is the one its on-demand start decides on (Fleet.start
 * `row`) instead of the start reading it again. Registry edits make
 * no event: a snapshot older than a second is checked by its fingerprint
 * (one small query: the rows' count and latest `updatedAt` of models, hosts,
 * server states and settings; ~0.2 ms against ~2 ms for 3 models and ~5 ms
 * for 30 for a read, which ran once a second in the event loop that relays
 * the answers) and read again when it differs, or when the last read is
 * FULL_READ_MAX_AGE_MS old. It is also read on demand (`fresh`) before the
 * gateway refuses a request or names a model unknown. Reading after every burst whether or not anyone looked cost a
 * REST start-all of 16 a registry read each 25 ms while the servers loaded.
 *
 * Requests in flight, last use, the idle unload time and its timer live on
 * the model's ServerEntry (Fleet.liveEntry), where the dashboard's status
 * reads them and the fleet's shutdown clears the timer.
 */
import type { StopCause } from "synapse-host-agent/server-states";
import type { Db } from "~/server/db/client";
import type { EventBus } from "~/server/services/fleet/events";
import type { Fleet, ServerEntry } from "~/server/services/fleet/fleet";
import type { LinkPool, PoolHost } from "~/server/services/fleet/links";
import { listeningPort } from "~/server/services/fleet/listening-port";
import { createChangeWaiters } from "./change-waiters";
import type { GatewayFleet, GatewayModel, LoadPolicy } from "./fleet-port";
import { readinessStep } from "./readiness";
import { linkLostOf, stoppingOf } from "./stopping";
import { createStoppingListeners } from "./notice-listeners";

export interface FleetAdapterOptions {
  db: Db;
  fleet: Fleet;
  events: EventBus;
  /** Opens channels to model servers on ssh hosts (GatewayFleet.connect; without it such models answer 502), and says when a host's link is down (GatewayFleet.linkDown). */
  links?: Pick<LinkPool, "openTcp"> & Partial<Pick<LinkPool, "linkDown">>;
  /** Snapshot age after which a request triggers a background re-read. Default 1000 ms. */
  maxAgeMs?: number;
  now?: () => number;
  onError?: (msg: string, err: unknown) => void;
}

export interface FleetAdapter extends GatewayFleet {
  close(): void;
}

/** The queue bound of a model whose queueLimit is null. */
export const DEFAULT_QUEUE_LIMIT = 32;

type Row = Awaited<ReturnType<typeof readRows>>[number];
type Settings = NonNullable<Awaited<ReturnType<Db["runtimeSettings"]["findUnique"]>>>;

async function readRows(db: Db) {
  return db.model.findMany({ include: { host: true, server: true }, orderBy: { name: "asc" } });
}

/** The longest a snapshot is served without a full read, whatever its fingerprint says (ms). */
export const FULL_READ_MAX_AGE_MS = 30_000;

/**
 * What changes when the snapshot's rows do: Prisma sets `updatedAt` on every create and update, the fleet's
 * state writes (state-sql.ts) set it on server states, and a delete changes a count.
 */
const FINGERPRINT_SQL = `SELECT
  (SELECT COUNT(*) FROM "Model") AS models, (SELECT MAX("updatedAt") FROM "Model") AS modelAt,
  (SELECT COUNT(*) FROM "Host") AS hosts, (SELECT MAX("updatedAt") FROM "Host") AS hostAt,
  (SELECT COUNT(*) FROM "ServerState") AS states, (SELECT MAX("updatedAt") FROM "ServerState") AS stateAt,
  (SELECT MAX("updatedAt") FROM "RuntimeSettings") AS settingsAt`;

async function readFingerprint(db: Db): Promise<string> {
  const rows = await db.$queryRawUnsafe<Record<string, unknown>[]>(FINGERPRINT_SQL);
  const r = rows[0] ?? {};
  return Object.keys(r)
    .sort()
    .map((k) => `${k}=${r[k] instanceof Date ? (r[k] as Date).toISOString() : String(r[k])}`)
    .join(";");
}

/**
 * The fingerprint without the server states' part: what registry edits change (models, hosts, settings). The
 * states' part changes with every state write, which fleet events announce (the changed models' rows are
 * read for them).
 */
function registryPart(fingerprint: string): string {
  return fingerprint
    .split(";")
    .filter((kv) => !kv.startsWith("state"))
    .join(";");
}

/** Direct mode's address when the host names none: Docker Desktop's name for the machine it runs on (the previous setup's). */
export const DEFAULT_DIRECT_ADDRESS = "host.docker.internal";

/**
 * Where the gateway finds a model's server: the local loopback, a channel on the ssh host's connection, or direct
 * mode's address; at the port its running process has (a port edited since applies at its next start).
 */
function upstreamOf(r: Row): Pick<GatewayModel, "upstream" | "via" | "unreachableWhy"> {
  const port = listeningPort(r);
  if (r.host.linkKind === "local") return { upstream: { host: "127.0.0.1", port }, via: "tcp", unreachableWhy: null };
  if (r.host.upstreamMode === "direct") return { upstream: { host: r.host.directAddress ?? DEFAULT_DIRECT_ADDRESS, port }, via: "tcp", unreachableWhy: null };
  return { upstream: { host: "127.0.0.1", port }, via: "ssh", unreachableWhy: null };
}

/** Registry-wide defaults a model without its own value takes. */
interface Defaults {
  parallel: number;
  readinessDeadlineMs: number;
  idleTimeoutMs: number;
  /** The app's auto-restart setting (GatewayModel.autoRestart). */
  autoRestart: boolean;
}

/** The defaults when the settings row is missing (the registry's own defaults). */
const FALLBACK_DEFAULTS: Defaults = { parallel: 1, readinessDeadlineMs: 120_000, idleTimeoutMs: 600_000, autoRestart: true };

/** `changedSinceFailure`: failed, and its saved settings changed since (Fleet.changedSinceFailure). */
function toGatewayModel(r: Row, defaults: Defaults, changedSinceFailure = false): GatewayModel {
  const parallel = r.parallel ?? defaults.parallel;
  return {
    id: r.id,
    name: r.name,
    alias: r.alias && r.alias !== "" ? r.alias : null,
    hostId: r.hostId,
    host: r.host.name,
    ...upstreamOf(r),
    hostLink: r.host.linkKind === "ssh" ? "ssh" : "local",
    serverApiKey: r.serverApiKey && !r.serverApiKeyOff ? r.serverApiKey : null,
    enabled: r.enabled,
    loadPolicy: (r.loadPolicy === "on-demand" ? "on-demand" : "always") satisfies LoadPolicy,
    desired: r.server?.desired ?? "stopped",
    state: r.server?.observed ?? "stopped",
    lastError: r.server?.lastError ?? null,
    changedSinceFailure,
    nextRestartAt: r.server?.nextRestartAt?.getTime() ?? null,
    autoRestart: defaults.autoRestart,
    stateWrittenAt: r.server?.updatedAt.getTime() ?? null,
    parallel,
    concurrency: r.concurrency ?? parallel,
    queueLimit: r.queueLimit ?? DEFAULT_QUEUE_LIMIT,
    idleMs: r.idleTimeoutMs ?? defaults.idleTimeoutMs,
    readinessDeadlineMs: r.readinessDeadlineMs ?? defaults.readinessDeadlineMs,
    createdS: Math.floor(r.createdAt.getTime() / 1000),
  };
}


/** Registry order (SQLite's for ASCII names: by code unit). */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** How long fleet events are gathered before the registry is read again (one read per burst). */
const EVENT_BATCH_MS = 25;
export function createFleetAdapter(options: FleetAdapterOptions): FleetAdapter {
  const { db, fleet, events } = options;
  const now = options.now ?? Date.now;
  const maxAgeMs = options.maxAgeMs ?? 1000;
  const onError = options.onError ?? (() => undefined);
  /** `at`: when it was last known current (read, or fingerprint unchanged); `readAt`: when it was read. */
  let snapshot: { at: number; readAt: number; fingerprint: string; models: readonly GatewayModel[]; byId: ReadonlyMap<string, GatewayModel> } | null = null;
  /** A fingerprint check under way. */
  let checking: Promise<void> | null = null;
  /** The registry-wide defaults as of the last read of every model (null: none yet). */
  let defaults: Defaults | null = null;
  /**
   * The last full read's rows and settings row, for the memory plan of an on-demand start (Fleet.start's
   * `registry`): the plan then reads nothing of its own. Null before a read, or when there is no settings row.
   */
  let registry: { models: readonly Row[]; settings: NonNullable<Awaited<ReturnType<Db["runtimeSettings"]["findUnique"]>>> } | null = null;
  /** The settings row as last read (a full read, or a fresh look at a failed model): what a failed model's settings are compared with. */
  let settingsRow: Settings | null = null;
  /** Host rows as the link pool wants them (the last read's). */
  let hosts = new Map<string, PoolHost>();
  let reading: Promise<readonly GatewayModel[]> | null = null;
  /** The read that starts when `reading` ends, shared by every call made meanwhile. */
  let next: Promise<readonly GatewayModel[]> | null = null;
  /** A fleet event about no model came after the snapshot's read began: the next use reads everything again. */
  let stale = false;
  /** Models with a fleet event since their row was last read: the next use reads their rows again. */
  const dirty = new Set<string>();
  /** A read of the changed models' rows under way (callers meanwhile share it). */
  let dirtyReading: Promise<readonly GatewayModel[]> | null = null;
  /** Fleet events seen (a row read while one arrived may predate its write). */
  let eventCount = 0;
  /**
   * Rows read for the caller that looked at a changed model (models() reading the changed ones, or a `fresh`
   * look at one), given to that caller's start of the model (Fleet.start `row`: the start decides on the row
   * read for this request, and reads no row of its own). Valid until the next models() call, a read of the
   * whole registry or an event about the model: a row another caller read earlier never decides a start.
   */
  const handoff = new Map<string, Row>();
  const waiters = createChangeWaiters();
  const stop = new AbortController();
  /** The gateway's callbacks for a model's server stopping (GatewayFleet.onStopping); one's throw goes to onError. */
  const stoppingListeners = createStoppingListeners(onError);

  /** The gateway's view of a row; a failed model's saved settings compared with the settings row last read (settings-hash.ts). */
  function gatewayModel(r: Row, d: Defaults): GatewayModel {
    return toGatewayModel(r, d, settingsRow !== null && fleet.changedSinceFailure(r, settingsRow));
  }

  /** The models of the last read (none before it). */
  function modelsHeld(): readonly GatewayModel[] {
    return snapshot?.models ?? [];
  }

  /** The model's ServerEntry; its host and name from the snapshot (used only if the fleet has no entry yet). */
  function entryOf(modelId: string): ServerEntry {
    const m = snapshot?.byId.get(modelId);
    return fleet.liveEntry({ id: modelId, hostId: m?.hostId ?? "", name: m?.name ?? "" });
  }

  async function readOnce(): Promise<readonly GatewayModel[]> {
    stale = false;
    dirty.clear();
    handoff.clear();
    // Before the rows: a change between the two reads then shows as a changed fingerprint next time.
    const fingerprint = await readFingerprint(db);
    const [rows, settings] = await Promise.all([readRows(db), db.runtimeSettings.findUnique({ where: { id: 1 } })]);
    const d = { parallel: settings?.parallel ?? FALLBACK_DEFAULTS.parallel, readinessDeadlineMs: settings?.readinessDeadlineMs ?? FALLBACK_DEFAULTS.readinessDeadlineMs, idleTimeoutMs: settings?.idleTimeoutMs ?? FALLBACK_DEFAULTS.idleTimeoutMs, autoRestart: settings?.autoRestart ?? FALLBACK_DEFAULTS.autoRestart };
    defaults = d;
    registry = settings ? { models: rows, settings } : null;
    settingsRow = settings;
    const models = rows.map((r) => gatewayModel(r, d));
    hosts = new Map(rows.map((r) => [r.hostId, r.host]));
    const at = now();
    snapshot = { at, readAt: at, fingerprint, models, byId: new Map(models.map((m) => [m.id, m])) };
    return models;
  }

  /** A snapshot past maxAgeMs: read again if the registry changed (its fingerprint) or the last read is old. */
  function refreshIfChanged(): void {
    if (checking || reading || !snapshot) return;
    const held = snapshot;
    if (now() - held.readAt > FULL_READ_MAX_AGE_MS) {
      void read().catch((err: unknown) => onError("reading the registry failed", err));
      return;
    }
    checking = readFingerprint(db)
      .then(async (fingerprint) => {
        if (snapshot !== held || reading) return;
        if (fingerprint === held.fingerprint && !stale) held.at = now();
        else await read();
      })
      .catch((err: unknown) => onError("reading the registry failed", err))
      .finally(() => {
        checking = null;
      });
  }

  /**
   * One model's row as it is now, with the defaults of the last full read (they change with a settings edit,
   * which the age re-read picks up within maxAgeMs, as it does for the snapshot the hot path serves from).
   * One query instead of every model's rows and the settings: what decides an on-demand start.
   */
  async function readOne(modelId: string, d: Defaults): Promise<readonly GatewayModel[]> {
    handoff.clear();
    const events = eventCount;
    const r = await db.model.findUnique({ where: { id: modelId }, include: { host: true, server: true } });
    if (!r) return [];
    hosts.set(r.hostId, r.host);
    if (events === eventCount) handoff.set(r.id, r);
    // A failed model is compared with the settings as they are now (a fix may be a global default just saved).
    if (r.server?.observed === "failed" && r.server.failedSpecHash !== null) settingsRow = (await db.runtimeSettings.findUnique({ where: { id: 1 } })) ?? settingsRow;
    return [gatewayModel(r, d)];
  }

  /**
   * Reads the rows of the models with an event since their last read, and puts them into the snapshot (a
   * model whose row is gone leaves it). A caller while it runs shares it; an event meanwhile marks its
   * model again (its row may predate the event's write) and the next use reads it again.
   */
  function readDirty(held: NonNullable<typeof snapshot>, d: Defaults): Promise<readonly GatewayModel[]> {
    const ids = [...dirty];
    dirty.clear();
    const events = eventCount;
    const startedAt = now();
    dirtyReading = (async () => {
      let rows: Row[];
      /** Past its age, the snapshot is checked for registry edits beside the rows (the memory plan of a start uses it only when current). */
      let fingerprint: string | null = null;
      try {
        [rows, fingerprint] = await Promise.all([db.model.findMany({ where: { id: { in: ids } }, include: { host: true, server: true } }), startedAt - held.at > maxAgeMs ? readFingerprint(db) : null]);
      } catch (err) {
        for (const id of ids) dirty.add(id);
        throw err;
      }
      // A read of the whole registry ended meanwhile: its snapshot is the newer one.
      if (snapshot !== held) return snapshot!.models;
      const byId = new Map(held.byId);
      for (const id of ids) byId.delete(id);
      for (const r of rows) {
        byId.set(r.id, gatewayModel(r, d));
        hosts.set(r.hostId, r.host);
        if (events === eventCount) handoff.set(r.id, r);
      }
      const models = [...byId.values()].sort((a, b) => byName(a.name, b.name));
      // No registry edit since the last full read: as current as it, now. (Its fingerprint stays the full
      // read's: state writes no event announced still show at the next age check.)
      const at = fingerprint !== null && registryPart(fingerprint) === registryPart(held.fingerprint) ? startedAt : held.at;
      snapshot = { ...held, at, models, byId };
      if (registry) registry = { ...registry, models: [...registry.models.filter((r) => !ids.includes(r.id)), ...rows].sort((a, b) => byName(a.name, b.name)) };
      return models;
    })().finally(() => {
      dirtyReading = null;
    });
    return dirtyReading;
  }

  /** The snapshot brought up to date: everything read again when stale, else the changed models' rows. */
  function catchUp(): Promise<readonly GatewayModel[]> {
    if (!snapshot || !defaults || stale) return read();
    if (dirtyReading) return dirtyReading;
    if (dirty.size > 0) return readDirty(snapshot, defaults);
    return Promise.resolve(snapshot.models);
  }

  /**
   * Reads the registry; a call while a read runs gets a read that starts after it (the running one may
   * predate the change), one for all such calls: the requests that wake together after a start each ask
   * for a fresh read, and one read after theirs began serves them all.
   */
  function read(): Promise<readonly GatewayModel[]> {
    if (reading) {
      next ??= reading.then(startRead, startRead);
      return next;
    }
    return startRead();
  }

  function startRead(): Promise<readonly GatewayModel[]> {
    next = null;
    reading = readOnce().finally(() => {
      reading = null;
    });
    return reading;
  }

  function notify(): void {
    waiters.wakeAll();
  }

  // Fleet events (state changes, starts, stops) → stale; read again and wake the requests waiting for a change,
  // if any. A burst of events (a start-all of 16 servers makes dozens) is read once per EVENT_BATCH_MS, not
  // once per event: a read per event cost the REST start-all about 70 ms at N=16 (bench/control-plane.ts).
  let batch: NodeJS.Timeout | null = null;
  const onFleetEvent = (modelId: string | null) => {
    eventCount += 1;
    if (modelId === null) stale = true;
    else {
      dirty.add(modelId);
      handoff.delete(modelId);
    }
    if (waiters.size > 0) readSoon();
  };
  const readSoon = () => {
    if (batch || stop.signal.aborted) return;
    batch = setTimeout(() => {
      batch = null;
      void catchUp()
        .catch((err: unknown) => onError("reading the registry failed", err))
        .then(notify);
    }, EVENT_BATCH_MS);
    batch.unref();
  };
  stop.signal.addEventListener("abort", () => batch && clearTimeout(batch), { once: true });
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        for await (const item of events.subscribe({ signal: stop.signal })) {
          if (item.event.type !== "event") continue;
          // The model is marked changed first: a request the notice ends, or one that looks again, reads it anew.
          onFleetEvent(item.event.modelId);
          const stopping = stoppingOf(item.event);
          if (stopping) stoppingListeners.notify(stopping);
          // A host's link lost: every model on it is out of the gateway's reach (the requests they answer broke).
          const lost = linkLostOf(item.event);
          if (lost) for (const m of modelsHeld()) if (m.hostId === lost.hostId) stoppingListeners.notify({ modelId: m.id, why: lost.why, unreachable: true });
        }
      } catch (err) {
        if (stop.signal.aborted) break;
        // Fell behind or the bus restarted: subscribe again after a moment.
        onError("fleet event stream ended; subscribing again", err);
        await new Promise((r) => setTimeout(r, 200));
      }
      if (!stop.signal.aborted) await new Promise((r) => setTimeout(r, 50));
    }
  })();

  return {
    async models(opts = {}) {
      if (opts.fresh && opts.only !== undefined && defaults) return readOne(opts.only, defaults);
      handoff.clear();
      if (opts.fresh || !snapshot || stale) return read();
      if (dirtyReading || dirty.size > 0) return catchUp();
      if (now() - snapshot.at > maxAgeMs) refreshIfChanged();
      return snapshot.models;
    },
    async start(modelId) {
      // Decided on the row the start reads (one read, where the gateway read the registry first, then the start
      // read the row again): only what readinessStep would start now is started.
      const startIf = (row: Row) => readinessStep(gatewayModel(row, defaults ?? FALLBACK_DEFAULTS), now()).kind === "start";
      // The plan weighs the host's models from the last full read when it is current (known unchanged within
      // maxAgeMs, no fleet event since), as the snapshot requests are served from: two queries less on a cold
      // request's way. The fleet's entries (what runs, what is starting) count over the rows' states, and a
      // model of the host running that the rows do not list makes the plan read them (start-plan.ts).
      const current = registry && snapshot && !stale && now() - snapshot.at <= maxAgeMs ? registry : null;
      // The row read for this request, when it looked at the model (see `handoff`): the start reads none.
      const row = handoff.get(modelId);
      handoff.delete(modelId);
      // Resolved as soon as the agent has answered ready (onReady): the waiting requests go on while the fleet
      // records the ready state (~1 ms of writes that were on every cold request's way).
      const r = await new Promise<Awaited<ReturnType<Fleet["start"]>>>((resolve, reject) => {
        fleet.start(modelId, { wait: true, evict: true, trigger: "request", startIf, onReady: resolve, ...(row ? { row } : {}), ...(current ? { registry: current } : {}) }).then(resolve, reject);
      });
      if (r.skipped) return { state: r.state, error: null, port: r.port, skipped: true };
      // Not read here: a request that comes next reads the model's row (its events mark it too), and a read
      // here first would put a second read on the way of every request that waited.
      dirty.add(modelId);
      notify();
      return { state: r.state, error: r.error, port: r.port, ...(r.unreachable ? { unreachable: true as const } : {}), ...(r.memory?.verdict === "refused" && r.error ? { memoryRefusal: r.error, ...(r.memory.mayFitLater === false ? { memoryMayFitLater: false } : {}) } : {}) };
    },
    changed(timeoutMs) {
      const changed = waiters.wait(timeoutMs);
      // Events came while nobody waited: they have not been read yet.
      if (stale || dirty.size > 0) readSoon();
      return changed;
    },
    async stop(modelId, cause: StopCause) {
      await fleet.stop(modelId, { cause });
      await read().catch(() => undefined);
      notify();
    },
    beginRequest(modelId) {
      const use = entryOf(modelId).beginRequest();
      return { served: () => use.served(now()), end: () => use.end(now()) };
    },
    usage(modelId) {
      const e = entryOf(modelId);
      return { inFlight: e.inFlight, lastUsedAt: e.lastUsedAt, idleUnloadAt: e.idleUnloadAt };
    },
    onStopping: stoppingListeners.add,
    onShutdown: (cb) => fleet.onShutdown(cb),
    setIdleUnloadAt(modelId, at, onDue) {
      const e = entryOf(modelId);
      // Same time, timer armed (or none wanted): leave it running.
      if (at === e.idleUnloadAt && (at === null || e.idleTimer !== null || !onDue)) return;
      e.clearIdle();
      e.idleUnloadAt = at;
      if (at === null || !onDue) return;
      const timer = setTimeout(() => {
        // Fired: a sweep that finds it not yet due (clocks differ by a little) arms it again.
        if (e.idleTimer === timer) e.idleTimer = null;
        onDue();
      }, Math.max(0, at - now()));
      timer.unref();
      e.idleTimer = timer;
    },
    async linkDown(hostId, opts) {
      return options.links?.linkDown ? options.links.linkDown(hostId, opts) : null;
    },
    async connect(hostId, port, opts) {
      if (!options.links) throw new Error(`the gateway has no link pool to reach host ${hostId}`);
      let host = hosts.get(hostId);
      if (!host) {
        await read();
        host = hosts.get(hostId);
      }
      if (!host) throw new Error(`no host with id ${hostId} has models`);
      return options.links.openTcp(host, port, { timeoutMs: opts.timeoutMs });
    },
    close() {
      stop.abort();
      notify();
    },
  };
}
