/**
 * The app's runtime: the database, the host links, the event bus and the
 * fleet, made once per process.
 *
 * Start: open (and migrate) the database, make sure the default host exists,
 * then ask every host's agent for its servers and adopt the live ones as they
 * are (same pids; a running server is never restarted at start).
 *
 * Close (the seed's "On Shutdown"): unless SYNAPSE_LEAVE_SERVERS_RUNNING,
 * stop every managed server through its agent, with a deadline; then close
 * the links, the event bus and the database. Idempotent.
 *
 * `getRuntime()` keeps the runtime on globalThis: Next loads route handlers,
 * instrumentation and server components as separate bundles, and they must
 * share one fleet (one agent per host, one set of timers).
 */
import { databaseFile, env as processEnv, type Env } from "~/server/env";
import { openDatabase, type Db } from "~/server/db/client";
import { createLogger, type Logger } from "~/server/log/logger";
import { createEventBus, type EventBus } from "~/server/services/fleet/events";
import { createFleet, type AdoptionReport, type Fleet, type FleetOptions } from "~/server/services/fleet/fleet";
import { createLinkPool, type LinkPool, type LinkPoolOptions } from "~/server/services/fleet/links";
import { appPortClashes } from "~/server/services/registry/app-port";
import { ensureDefaultHost } from "~/server/services/registry/hosts";
import { createAppMetrics, type AppMetrics, type AppMetricsOptions } from "~/server/services/metrics/app-metrics";

export interface AppRuntime {
  readonly env: Env;
  readonly log: Logger;
  readonly db: Db;
  readonly links: LinkPool;
  readonly events: EventBus;
  readonly fleet: Fleet;
  /** The metrics registry (/api/metrics), the collector's history, the gateway's figures. */
  readonly metrics: AppMetrics;
  /** What the start-up adoption found per host. */
  readonly adoption: AdoptionReport[];
  /**
   * Stops every managed server (stopServers, default: unless
   * SYNAPSE_LEAVE_SERVERS_RUNNING), then closes links, events and the
   * database (when the runtime opened it). Idempotent.
   */
  close(options?: { stopServers?: boolean; deadlineMs?: number }): Promise<void>;
  /** During close: ends its wait for the gateway's requests in flight (Fleet.endShutdownWait); true when one was under way. */
  endShutdownWait(): boolean;
}

export interface CreateRuntimeOptions {
  env: Env;
  log?: Logger;
  /** A database someone else owns (left open by close); default: opened from DATABASE_URL. */
  db?: Db;
  /** How long start-up waits for each host's link before adopting (a host that is down is adopted when it connects). */
  adoptTimeoutMs?: number;
  /** Tuning for tests and deployments. */
  fleet?: Partial<Pick<FleetOptions, "restartPolicy" | "statusTimeoutMs" | "now" | "reconcileIntervalMs">>;
  links?: Partial<Pick<LinkPoolOptions, "localAgent" | "ssh" | "localCallTimeoutMs">>;
  metrics?: Partial<Pick<AppMetricsOptions, "intervalMs" | "readTimeoutMs" | "hostFigures">>;
}

/** Default deadline for stopping every server at shutdown (boot.ts caps the whole shutdown at 60 s). */
export const SHUTDOWN_STOP_DEADLINE_MS = 45_000;

export async function createRuntime(options: CreateRuntimeOptions): Promise<AppRuntime> {
  const { env } = options;
  const log = options.log ?? createLogger("fleet", env.LOG_LEVEL);
  const ownsDb = options.db === undefined;
  const db = options.db ?? openDatabase(databaseFile(env.DATABASE_URL), { log: (msg, data) => log.info(msg, data as Record<string, unknown>) });
  let links: LinkPool | null = null;
  let events: EventBus | null = null;
  let fleet: Fleet | null = null;
  let metrics: AppMetrics | null = null;
  try {
    await ensureDefaultHost(db, env);
    // Before adoption and the first reconcile, whose start of such a model would fail on the app's own port.
    for (const clash of await appPortClashes(db, env.PORT)) log.warn(clash.message, { model: clash.model, host: clash.host, port: clash.port, suggestion: clash.suggestion });
    events = await createEventBus({ db, log: log.child("events") });
    links = createLinkPool({ env, log: log.child("links"), ...options.links });
    fleet = createFleet({
      db,
      links,
      events,
      log: log.child("reconciler"),
      appPort: env.PORT,
      reconcileIntervalMs: env.SYNAPSE_RECONCILE_INTERVAL_MS,
      ...options.fleet,
    });
    const adoption = await fleet.adopt({ timeoutMs: options.adoptTimeoutMs ?? 10_000 });
    for (const a of adoption) {
      if (a.error) log.warn("host not reachable at start; its servers are adopted when it connects", { host: a.host, error: a.error });
      else if (a.adopted.length > 0) log.info("re-adopted running servers", { host: a.host, servers: a.adopted.map((s) => `${s.name} (pid ${s.pid})`) });
    }

    metrics = createAppMetrics({ db, fleet, events, links, log: log.child("metrics"), ...options.metrics });
    const parts = { db, links, events, fleet, metrics };
    let closing: Promise<void> | null = null;
    const runtime: AppRuntime = {
      env,
      log,
      ...parts,
      adoption,
      endShutdownWait: () => parts.fleet.endShutdownWait(),
      close(closeOptions = {}) {
        closing ??= closeRuntime(parts, {
          stopServers: closeOptions.stopServers ?? !env.SYNAPSE_LEAVE_SERVERS_RUNNING,
          deadlineMs: closeOptions.deadlineMs ?? SHUTDOWN_STOP_DEADLINE_MS,
          ownsDb,
          log,
        }).finally(() => {
          if (globalForRuntime.synapseRuntime?.runtime === runtime) globalForRuntime.synapseRuntime = undefined;
        });
        return closing;
      },
    };
    return runtime;
  } catch (err) {
    // Half made: undo what exists, servers keep running (nothing was decided yet).
    await metrics?.close().catch(() => undefined);
    await fleet?.shutdown({ stopServers: false }).catch(() => undefined);
    await fleet?.close().catch(() => undefined);
    await links?.close().catch(() => undefined);
    await events?.close().catch(() => undefined);
    if (ownsDb) await db.$disconnect().catch(() => undefined);
    throw err;
  }
}

async function closeRuntime(
  parts: { db: Db; links: LinkPool; events: EventBus; fleet: Fleet; metrics: AppMetrics },
  o: { stopServers: boolean; deadlineMs: number; ownsDb: boolean; log: Logger },
): Promise<void> {
  const started = Date.now();
  await parts.metrics.close().catch((err: unknown) => o.log.error("closing the metrics failed", { error: err }));
  try {
    const stopped = await parts.fleet.shutdown({ stopServers: o.stopServers, deadlineMs: o.deadlineMs });
    // Only the servers it ended: one already stopped is neither counted nor named.
    if (o.stopServers) o.log.info("stopped the managed servers", { count: stopped.length, servers: stopped.map((s) => s.name), ms: Date.now() - started });
    else o.log.info("leaving servers running; the next start re-adopts them");
  } catch (err) {
    o.log.error("stopping servers at shutdown failed", { error: err });
  }
  await parts.fleet.close().catch((err: unknown) => o.log.error("closing the fleet failed", { error: err }));
  await parts.links.close().catch((err: unknown) => o.log.error("closing the links failed", { error: err }));
  await parts.events.close().catch((err: unknown) => o.log.error("closing the event bus failed", { error: err }));
  if (o.ownsDb) await parts.db.$disconnect().catch((err: unknown) => o.log.error("closing the database failed", { error: err }));
}

const globalForRuntime = globalThis as unknown as { synapseRuntime?: { promise: Promise<AppRuntime>; runtime?: AppRuntime } };

/** The process's runtime, created on first call from the validated environment; shared by every bundle. */
export function getRuntime(): Promise<AppRuntime> {
  let slot = globalForRuntime.synapseRuntime;
  if (!slot) {
    const created: { promise: Promise<AppRuntime>; runtime?: AppRuntime } = { promise: Promise.resolve(null as unknown as AppRuntime) };
    created.promise = createRuntime({ env: processEnv() }).then(
      (runtime) => {
        created.runtime = runtime;
        return runtime;
      },
      (err: unknown) => {
        // A failed start is not cached: the next call tries again.
        if (globalForRuntime.synapseRuntime === created) globalForRuntime.synapseRuntime = undefined;
        throw err;
      },
    );
    globalForRuntime.synapseRuntime = slot = created;
  }
  return slot.promise;
}
