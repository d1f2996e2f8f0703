/**
 * The app's metrics: one prom-client Registry per runtime (held on the
 * runtime, which lives on globalThis, so Next's route handler for
 * /api/metrics and the gateway's front path see the same one), and the
 * collector that fills it:
 *
 * - every `intervalMs` (5 s), each ready model's llama-server is read
 *   (server-reader.ts: /props, /metrics, /slots while awake) through the
 *   gateway's upstream (same target and server key as the gateway's
 *   requests: fleet-adapter.ts), all servers at once, each with a deadline;
 * - a point per live model goes into its last hour in memory (history.ts),
 *   and once a minute a row per model into SQLite, pruned to 24 h
 *   (minute-store.ts);
 * - the gateway's own figures (gateway-figures.ts) and the hosts'
 *   (host-figures.ts) are read when /api/metrics is.
 *
 * Series follow the registry: each read drops the series of models and
 * hosts it no longer has (a deleted model, a renamed one's old name, a moved
 * one's old host, a deleted host), so /api/metrics describes no model that
 * is gone for longer than one interval.
 *
 * Reads never overlap: a tick that is still running when the next is due
 * is skipped (a slow host delays its own points, nothing piles up).
 */
import { Registry } from "prom-client";
import { isAlive } from "synapse-host-agent/server-states";
import type { Db } from "~/server/db/client";
import { createFleetAdapter, type FleetAdapter } from "~/server/gateway/fleet-adapter";
import type { GatewayModel } from "~/server/gateway/fleet-port";
import { createSshUpstream } from "~/server/gateway/ssh-upstream";
import { createUpstream, type Upstream } from "~/server/gateway/upstream";
import type { Logger } from "~/server/log/logger";
import type { EventBus } from "~/server/services/fleet/events";
import type { Fleet, ServerView } from "~/server/services/fleet/fleet";
import type { LinkPool } from "~/server/services/fleet/links";
import { createGatewayFigures, type GatewayFigures } from "./gateway-figures";
import { HISTORY_POINTS, minuteOf, ModelHistory, type MetricPoint, type MinutePoint } from "./history";
import { fleetHostFigures, type HostFiguresSource } from "./host-figures";
import { registerHostFigures } from "./host-metrics";
import type { LoadProgress } from "./load-progress";
import { LoadTracker } from "./load-tracker";
import { createMinuteStore, type MinuteStore } from "./minute-store";
import { residentBytes } from "./process-memory";
import { ratesBetween } from "./rates";
import { registerServerFigures, type ServerSample } from "./server-figures";
import { readServer } from "./server-reader";

export const METRICS_INTERVAL_MS = 5_000;

export interface AppMetricsOptions {
  db: Db;
  fleet: Fleet;
  events: EventBus;
  log: Logger;
  /** The hosts' links: a model on an ssh host is read through a channel on its connection, as the gateway reaches it. */
  links?: Pick<LinkPool, "openTcp"> & Partial<Pick<LinkPool, "linkDown">>;
  /** Between reads of every server (ms); 0: no timer (tests and benches call `tick`). Default 5000. */
  intervalMs?: number;
  /** Deadline of each read of a server (ms). Default 2000. */
  readTimeoutMs?: number;
  /** Where host figures come from; default: this machine for local hosts, the agents' readings for the others. */
  hostFigures?: HostFiguresSource;
  now?: () => number;
}

export interface AppMetrics {
  readonly registry: Registry;
  /** Between points (ms). */
  readonly intervalMs: number;
  /** The gateway's sink (front.ts hands it to the gateway). */
  readonly gateway: GatewayFigures;
  /** Prometheus text of everything, and its content type. */
  text(): Promise<{ body: string; contentType: string }>;
  /** A model's points of the last hour (oldest first), at or after `sinceMs`. */
  history(modelId: string, sinceMs?: number): MetricPoint[];
  /** A model's minutes at or after `sinceMs` (SQLite, up to 24 h). */
  minutes(modelId: string, sinceMs: number): Promise<MinutePoint[]>;
  /** Generated tokens/s of each model's last `points` points (oldest first; null: unknown), for the fleet's sparklines. */
  sparklines(points: number): Map<string, (number | null)[]>;
  /** How far a loading model is; null when it is not loading. */
  loadProgress(modelId: string): LoadProgress | null;
  /** Every loading model's progress, by model id. */
  loadProgressAll(): Map<string, LoadProgress>;
  /** Reads every server once and records a point per live model (what the timer does). */
  tick(): Promise<void>;
  /** Writes the minute that ended (the timer does at each minute's change); resolves with rows pruned. */
  rollUp(): Promise<number>;
  close(): Promise<void>;
}

export function createAppMetrics(options: AppMetricsOptions): AppMetrics {
  const { db, fleet, events, log } = options;
  const now = options.now ?? Date.now;
  const intervalMs = options.intervalMs ?? METRICS_INTERVAL_MS;
  const readTimeoutMs = options.readTimeoutMs ?? 2_000;
  const hostSource = options.hostFigures ?? fleetHostFigures((hostId) => fleet.hostMemory(hostId));
  const registry = new Registry();
  const gateway = createGatewayFigures(registry);
  const samples = new Map<string, ServerSample>();
  const histories = new Map<string, ModelHistory>();
  const loads = new LoadTracker(db, now);
  const store: MinuteStore = createMinuteStore(db);
  const upstream: Upstream = createUpstream({ maxSockets: 4 });
  // The reader runs on a timer: it leaves a link that is down to its backoff (a request's early retry is the gateway's, links.ts openTcp).
  const links = options.links;
  const readerLinks = links && { openTcp: (host: Parameters<typeof links.openTcp>[0], port: number, o?: Parameters<typeof links.openTcp>[2]) => links.openTcp(host, port, { ...o, earlyRetry: false }) };
  const adapter: FleetAdapter = createFleetAdapter({ db, fleet, events, ...(readerLinks ? { links: readerLinks } : {}), onError: (msg, err) => log.warn(msg, { error: err }) });
  const sshUpstream = createSshUpstream(adapter, { maxSockets: 4 });
  const stop = new AbortController();

  /** The read each model is having now, to abandon when its server is stopped (see the event loop below). */
  const inFlight = new Map<string, AbortController>();

  registerServerFigures(registry, () => samples.values());
  // The hosts' names and link kinds, as the last read found them (no database query per scrape).
  let hosts: { id: string; name: string; linkKind: string }[] | null = null;
  const readHosts = async () => (hosts = await db.host.findMany({ select: { id: true, name: true, linkKind: true } }));
  registerHostFigures(registry, async () => hostSource(hosts ?? (await readHosts())));

  // Live state changes and log lines → the loading models' progress.
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        for await (const item of events.subscribe({ logs: true, signal: stop.signal })) {
          const ev = item.event;
          // A server being stopped: a read it still owes an answer would hold its exit (llama-server waits for the
          // request, up to the read's deadline: 2 s on every idle unload, stop or restart that met a read).
          if (ev.type !== "log" && ev.kind === "state" && ev.modelId && (ev.state === "stopping" || !isAlive(ev.state ?? ""))) inFlight.get(ev.modelId)?.abort();
          loads.onEvent(ev);
        }
      } catch (err) {
        if (stop.signal.aborted) break;
        log.debug("event stream for load progress ended; subscribing again", { error: err instanceof Error ? err.message : String(err) });
      }
      if (!stop.signal.aborted) await new Promise((r) => setTimeout(r, 200));
    }
  })();

  async function readOne(v: ServerView, m: GatewayModel | undefined, prev: ServerSample | undefined): Promise<ServerSample> {
    const base: ServerSample = { modelId: v.modelId, model: v.name, host: v.host, state: v.state, reading: null, error: null, rates: null, memoryBytes: null, progress: null };
    const memory = v.link.kind === "local" && v.pid !== null ? residentBytes(v.pid) : Promise.resolve(null);
    if (v.state !== "ready" || !m) {
      return { ...base, memoryBytes: isAlive(v.state) ? await memory : null, progress: loads.progress(v.modelId), error: v.state === "ready" && !m ? "not in the gateway's model list yet" : null };
    }
    if (!m.upstream) return { ...base, memoryBytes: await memory, error: m.unreachableWhy };
    const abandon = new AbortController();
    inFlight.set(v.modelId, abandon);
    try {
      const reading = await readServer(upstream, { host: m.upstream.host, port: m.upstream.port, apiKey: m.serverApiKey, ...(m.via === "ssh" ? { agent: sshUpstream.agentFor(m.hostId) } : {}) }, { timeoutMs: readTimeoutMs, now, signal: abandon.signal });
      return { ...base, reading, rates: ratesBetween(prev?.reading ?? null, reading), memoryBytes: await memory };
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (abandon.signal.aborted) log.debug("a model server's metrics read abandoned: the server is being stopped", { model: v.name, host: v.host });
      else if (prev?.error !== error) log.warn("reading a model server's metrics failed", { model: v.name, host: v.host, error });
      // Keep the last counters (so a failed read is not a reset), without rates.
      return { ...base, reading: prev?.reading ?? null, error, memoryBytes: await memory };
    } finally {
      if (inFlight.get(v.modelId) === abandon) inFlight.delete(v.modelId);
    }
  }

  let ticking: Promise<void> | null = null;
  let minuteOfLastPoint: number | null = null;

  async function doTick(): Promise<void> {
    const since = gateway.mark();
    const [views, models] = await Promise.all([fleet.status(), adapter.models(), readHosts()]);
    // The gateway's series of models the registry no longer has (deleted, renamed, moved) go.
    gateway.retain(views.map((v) => ({ model: v.name, host: v.host })), since);
    const byId = new Map(models.map((m) => [m.id, m]));
    for (const v of views) loads.onView(v);
    const next = await Promise.all(views.filter((v) => isAlive(v.state)).map((v) => readOne(v, byId.get(v.modelId), samples.get(v.modelId))));
    const registered = new Set(views.map((v) => v.modelId));
    samples.clear();
    for (const s of next) samples.set(s.modelId, s);
    for (const v of views) if (!samples.has(v.modelId)) samples.set(v.modelId, { modelId: v.modelId, model: v.name, host: v.host, state: v.state, reading: null, error: null, rates: null, memoryBytes: null, progress: null });
    for (const id of histories.keys()) if (!registered.has(id)) histories.delete(id);
    loads.keepOnly(registered);

    // A point per live model.
    const t = now();
    const queues = new Map(gateway.queues().map((q) => [q.modelId, q]));
    const interval = gateway.takeInterval();
    const minute = Math.floor(t / 60_000) * 60_000;
    if (minuteOfLastPoint !== null && minute !== minuteOfLastPoint) await rollUp().catch((err: unknown) => log.warn("writing the minute's metrics failed", { error: err }));
    minuteOfLastPoint = minute;
    for (const v of views) {
      if (!isAlive(v.state)) continue;
      const s = samples.get(v.modelId)!;
      const q = queues.get(v.modelId);
      const lat = interval.get(v.name);
      let h = histories.get(v.modelId);
      if (!h) histories.set(v.modelId, (h = new ModelHistory(HISTORY_POINTS)));
      h.push({
        t,
        generatedTokensPerS: s.rates?.generatedPerS ?? null,
        promptTokensPerS: s.rates?.promptPerS ?? null,
        inFlight: q?.running ?? 0,
        queued: q?.queued ?? 0,
        latencyMs: lat && lat.count > 0 ? (lat.seconds / lat.count) * 1000 : null,
        memoryBytes: s.memoryBytes,
      });
    }
  }

  async function rollUp(): Promise<number> {
    const t = now();
    const minuteStart = Math.floor(t / 60_000) * 60_000 - 60_000;
    const rows: { modelId: string; point: MinutePoint }[] = [];
    for (const [modelId, h] of histories) {
      const p = minuteOf(minuteStart, h.points(minuteStart).filter((x) => x.t < minuteStart + 60_000));
      if (p) rows.push({ modelId, point: p });
    }
    return store.write(rows, t);
  }

  function tick(): Promise<void> {
    ticking ??= doTick().finally(() => {
      ticking = null;
    });
    return ticking;
  }

  const timer =
    intervalMs > 0
      ? setInterval(() => {
          if (!ticking) void tick().catch((err: unknown) => log.warn("reading metrics failed", { error: err }));
        }, intervalMs)
      : null;
  timer?.unref();

  return {
    registry,
    intervalMs: intervalMs > 0 ? intervalMs : METRICS_INTERVAL_MS,
    gateway,
    async text() {
      return { body: await registry.metrics(), contentType: registry.contentType };
    },
    history(modelId, sinceMs) {
      return histories.get(modelId)?.points(sinceMs) ?? [];
    },
    minutes(modelId, sinceMs) {
      return store.read(modelId, sinceMs);
    },
    sparklines(points) {
      const out = new Map<string, (number | null)[]>();
      for (const [id, h] of histories) out.set(id, h.points().slice(-points).map((p) => p.generatedTokensPerS));
      return out;
    },
    loadProgress: (modelId) => loads.progress(modelId),
    loadProgressAll: () => loads.all(),
    tick,
    rollUp,
    async close() {
      if (timer) clearInterval(timer);
      stop.abort();
      await ticking?.catch(() => undefined);
      adapter.close();
      upstream.close();
      sshUpstream.close();
    },
  };
}
