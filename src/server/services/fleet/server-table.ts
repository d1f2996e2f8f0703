/**
 * The server table: one ServerEntry per model, found by model id or by the
 * name its host knows it by, loaded from the database on first use, and the
 * ordered record writes of each model.
 */
import { isStopCause } from "synapse-host-agent/server-states";
import type { Host, Model, ServerState } from "~/generated/prisma/client";
import type { Db } from "~/server/db/client";
import type { Logger } from "~/server/log/logger";
import { ServiceError } from "../errors";
import type { EventBus, EventInput } from "./events";
import { ServerEntry, type ServerResult } from "./server-entry";
import { runStatements } from "~/server/db/sql-driver";
import { upsertStateSql, type StateData } from "./state-sql";

export type ModelRow = Model & { host: Host; server: ServerState | null };

export interface ServerTable {
  /** The entry of a model already seen, if any. */
  get(modelId: string): ServerEntry | undefined;
  /** The entry of this model (made on first use), its name remembered for the host's events. */
  remember(row: Pick<Model, "id" | "hostId" | "name">): ServerEntry;
  /** The entry of this model, made (and its name remembered) only when there is none; an existing one is left as it is. */
  ensure(row: Pick<Model, "id" | "hostId" | "name">): ServerEntry;
  entries(): IterableIterator<ServerEntry>;
  /** The model id of a server name on a host (agent events name servers by model name); null when unknown. */
  modelIdFor(hostId: string, name: string): Promise<string | null>;
  /** The model id when already known, without a database read. */
  knownModelId(hostId: string, name: string): string | undefined;
  /** Runs `fn` after this model's earlier record writes (the entry loaded first); never rejects the chain. */
  withModel<T>(e: ServerEntry, fn: () => Promise<T>): Promise<T>;
  /**
   * Writes a model's state columns, and the event reporting it in the same transaction. Nothing once closed.
   * A write of `observed` also writes failedSpecHash (unless given): the entry's startSettingsHash with
   * `failed`, null with any other state.
   */
  writeState(e: ServerEntry, data: StateData, event?: Omit<EventInput, "modelId" | "hostId">): Promise<void>;
  loadModel(modelId: string): Promise<ModelRow>;
  /** After close(): nothing is written. */
  closed: boolean;
}

export function resultOf(row: Pick<ModelRow, "id" | "name" | "port"> & { host: Pick<Host, "name"> }, state: string, pid: number | null, error: string | null): ServerResult {
  return { modelId: row.id, name: row.name, host: row.host.name, port: row.port, state, pid, error };
}

export function createServerTable(deps: { db: Db; events: EventBus; log: Logger; now: () => number }): ServerTable {
  const { db, events, log, now } = deps;
  const entries = new Map<string, ServerEntry>();
  /** name → modelId per host. */
  const names = new Map<string, Map<string, string>>();
  const namesRefreshedAt = new Map<string, number>();

  function load(e: ServerEntry, row: ServerState | null): void {
    e.loaded = true;
    if (!row) return;
    e.state = row.observed;
    e.pid = row.pid;
    e.startedAt = row.startedAt?.toISOString() ?? null;
    e.backend = row.gpuBackend;
    e.cause = isStopCause(row.cause) ? row.cause : null;
    // Ended before this app started: its end is recorded (the pid may have been cleared with it).
    if (!e.alive && row.startedAt) e.ended = { pid: row.pid, startedAtMs: row.startedAt.getTime() };
  }

  const table: ServerTable = {
    closed: false,
    get: (modelId) => entries.get(modelId),
    entries: () => entries.values(),

    remember(row) {
      let m = names.get(row.hostId);
      if (!m) names.set(row.hostId, (m = new Map()));
      m.set(row.name, row.id);
      let e = entries.get(row.id);
      if (!e) entries.set(row.id, (e = new ServerEntry(row.id, row.hostId, row.name)));
      e.hostId = row.hostId;
      e.name = row.name;
      return e;
    },

    ensure: (row) => entries.get(row.id) ?? table.remember(row),

    knownModelId: (hostId, name) => names.get(hostId)?.get(name),

    async modelIdFor(hostId, name) {
      const known = names.get(hostId)?.get(name);
      if (known) return known;
      // Unknown name: refresh this host's names, at most once a second (a stranger's events must not hammer the db).
      const last = namesRefreshedAt.get(hostId) ?? 0;
      if (now() - last < 1000 && names.has(hostId)) return null;
      namesRefreshedAt.set(hostId, now());
      const rows = await db.model.findMany({ where: { hostId }, select: { id: true, name: true } });
      names.set(hostId, new Map(rows.map((r) => [r.name, r.id])));
      return names.get(hostId)!.get(name) ?? null;
    },

    withModel(e, fn) {
      const run = e.chain.then(async () => {
        if (!e.loaded) {
          const row = await db.serverState.findUnique({ where: { modelId: e.modelId } });
          if (!e.loaded) load(e, row);
        }
        return fn();
      });
      e.chain = run.catch((err: unknown) => {
        if (!table.closed) log.error("recording a server's state failed", { modelId: e.modelId, error: err });
      });
      return run;
    },

    async writeState(e, data, event) {
      if (table.closed) return;
      // What belongs to a failed state alone, here rather than on each path that leaves it: the settings of the
      // start that failed (the last one issued), and a stop that left its port held (stop-incomplete.ts).
      let row: StateData = data;
      if (data.observed !== undefined) {
        if (data.failedSpecHash === undefined) row = { ...row, failedSpecHash: data.observed === "failed" ? e.startSettingsHash : null };
        if (data.observed !== "failed" && data.stopIncomplete === undefined) row = { ...row, stopIncomplete: null };
      }
      const write = () => upsertStateSql(e.modelId, row);
      try {
        if (event) await events.append({ ...event, modelId: e.modelId, hostId: e.hostId }, { with: () => [write()] });
        else await runStatements(db, [write()]);
      } catch (err) {
        // The model was deleted meanwhile: nothing to record.
        if ((await db.model.count({ where: { id: e.modelId } })) === 0) return;
        throw err;
      }
    },

    async loadModel(modelId) {
      const row = await db.model.findUnique({ where: { id: modelId }, include: { host: true, server: true } });
      if (!row) throw new ServiceError("NOT_FOUND", `no model with id ${modelId}`, { issues: [{ path: "modelId", message: `no model with id ${modelId}` }] });
      return row;
    },
  };
  return table;
}
