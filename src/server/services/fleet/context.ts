/** What the fleet's parts share: dependencies, the server table, the per-host queue, and whether it is closing. */
import { KeyedQueue } from "synapse-host-agent/keyed-queue";
import type { Db } from "~/server/db/client";
import type { Logger } from "~/server/log/logger";
import type { EventBus } from "./events";
import type { FleetOptions } from "./fleet-types";
import type { LinkPool } from "./links";
import { DEFAULT_RESTART_POLICY, type RestartPolicy } from "./restart-policy";
import { createServerTable, type ServerTable } from "./server-table";

export interface FleetContext {
  db: Db;
  links: LinkPool;
  events: EventBus;
  log: Logger;
  appPort: number;
  now: () => number;
  policy: RestartPolicy;
  /** Deadline of `status`, `logs` and `apply` calls (ms). */
  statusTimeoutMs: number;
  table: ServerTable;
  /**
   * Decisions per host run one at a time: each only issues agent calls and
   * registers them as operations, so a 2-minute model load never holds it.
   */
  hostQueue: KeyedQueue<string>;
  /** Shutdown began: no new starts, no restarts, no reactions. */
  closing: boolean;
  /** The shutdown stops the servers (Fleet.shutdown's stopServers): a crash meanwhile gets no restart planned for the next app. */
  stoppingServers: boolean;
}

export function createContext(options: FleetOptions): FleetContext {
  const now = options.now ?? Date.now;
  return {
    db: options.db,
    links: options.links,
    events: options.events,
    log: options.log,
    appPort: options.appPort,
    now,
    policy: { ...DEFAULT_RESTART_POLICY, ...options.restartPolicy },
    statusTimeoutMs: options.statusTimeoutMs ?? 10_000,
    table: createServerTable({ db: options.db, events: options.events, log: options.log, now }),
    hostQueue: new KeyedQueue<string>(),
    closing: false,
    stoppingServers: false,
  };
}
