/**
 * The writes on the fleet's hot path, as single prepared SQL statements: a
 * server's state (an upsert of its ServerState row), the same columns of
 * many servers (start-all's "wanted"), and an event row. They
 * run on the database client's own connection through its driver adapter
 * (db/sql-driver.ts), not through the Prisma client.
 *
 * Why not the Prisma model API here: a start of 16 servers records 32 state
 * changes and 33 events while the servers load. Through the model API each
 * write is planned and interpreted on the event loop (about 1 ms a write on
 * this machine, ~90 ms of CPU for the start-all), which competes with the
 * loading servers and with the agent's readiness probes; a raw statement
 * through the client is about a fifth of that, and through the adapter a
 * third of that again (bench/control-plane.ts). Column names come from the
 * fixed list below, never from data; every value is a bound parameter.
 *
 * Dates are written in the form Prisma writes them ("…T04:32:01.044+00:00"),
 * so rows read back alike whichever path wrote them.
 */
import type { Prisma } from "~/generated/prisma/client";
import type { SqlStatement, SqlValue } from "~/server/db/sql-driver";

/** The columns a state write may set, and how their values are stored. */
const STATE_COLUMNS = {
  desired: "text",
  desiredAt: "date",
  observed: "text",
  pid: "int",
  port: "int",
  startedAt: "date",
  readyAt: "date",
  stoppedAt: "date",
  restarts: "int",
  recentCrashes: "text",
  nextRestartAt: "date",
  lastError: "text",
  lastExitCode: "int",
  lastSignal: "text",
  gpuBackend: "text",
  cause: "text",
  stopIncomplete: "text",
  failedSpecHash: "text",
} as const satisfies Record<Exclude<keyof Prisma.ServerStateUncheckedCreateInput, "modelId" | "updatedAt">, "text" | "int" | "date">;

export type StateData = { -readonly [K in keyof typeof STATE_COLUMNS]?: (typeof STATE_COLUMNS)[K] extends "date" ? Date | string | null : (typeof STATE_COLUMNS)[K] extends "int" ? number | null : K extends "desired" | "observed" | "recentCrashes" ? string : string | null };

/** A date as Prisma's SQLite adapter stores it. */
export function sqliteDate(d: Date): string {
  return d.toISOString().replace(/Z$/, "+00:00");
}

function bindValue(kind: "text" | "int" | "date", value: unknown): SqlValue {
  if (value === null) return null;
  if (kind === "date") {
    const d = value instanceof Date ? value : new Date(String(value));
    if (Number.isNaN(d.getTime())) throw new TypeError(`not a date: ${String(value)}`);
    return sqliteDate(d);
  }
  if (kind === "int") {
    if (typeof value !== "number" || !Number.isInteger(value)) throw new TypeError(`not an integer: ${String(value)}`);
    return value;
  }
  return String(value);
}

/** The columns given (checked against the list) and updatedAt, with their bound values. */
function columnsOf(data: StateData, now: Date): { names: string[]; values: SqlValue[] } {
  const names: string[] = [];
  const values: SqlValue[] = [];
  for (const [key, value] of Object.entries(data)) {
    if (value === undefined) continue;
    const kind = STATE_COLUMNS[key as keyof typeof STATE_COLUMNS];
    if (!kind) throw new TypeError(`ServerState has no writable column ${JSON.stringify(key)}`);
    names.push(key);
    values.push(bindValue(kind, value));
  }
  names.push("updatedAt");
  values.push(sqliteDate(now));
  return { names, values };
}

/**
 * The statement that writes these columns of a model's state row (creating
 * the row if it is missing); the other columns keep their values. Fails,
 * like any write, when the model no longer exists (foreign key). Run it with
 * runStatements (db/sql-driver.ts). Throws TypeError for a column or value
 * that does not fit.
 */
export function upsertStateSql(modelId: string, data: StateData, now = new Date()): SqlStatement {
  const { names, values } = columnsOf(data, now);
  const cols = names.map((n) => `"${n}"`).join(", ");
  const updates = names.map((n) => `"${n}" = excluded."${n}"`).join(", ");
  return {
    sql: `INSERT INTO "ServerState" ("modelId", ${cols}) VALUES (?, ${names.map(() => "?").join(", ")}) ON CONFLICT("modelId") DO UPDATE SET ${updates}`,
    args: [modelId, ...values],
  };
}

/**
 * The statement that writes these columns of the state rows of these models
 * (rows that do not exist are not created); with `observedIn`, only of rows
 * whose observed state is one of those; with `noCause`, only of rows with no
 * stop cause. The ids travel as one JSON list, whatever their number.
 */
export function updateStatesSql(modelIds: readonly string[], data: StateData, options: { observedIn?: readonly string[]; noCause?: boolean } = {}, now = new Date()): SqlStatement {
  const { names, values } = columnsOf(data, now);
  const sets = names.map((n) => `"${n}" = ?`).join(", ");
  const only = (options.observedIn ? ` AND "observed" IN (SELECT value FROM json_each(?))` : "") + (options.noCause ? ` AND "cause" IS NULL` : "");
  return {
    sql: `UPDATE "ServerState" SET ${sets} WHERE "modelId" IN (SELECT value FROM json_each(?))${only}`,
    args: [...values, JSON.stringify(modelIds), ...(options.observedIn ? [JSON.stringify(options.observedIn)] : [])],
  };
}

export interface EventRowInput {
  at: Date;
  kind: string;
  modelId: string | null;
  hostId: string | null;
  state: string | null;
  message: string;
  data: string | null;
}

/** The statement that inserts an event row; its one row is the new id. */
export function insertEventSql(e: EventRowInput): SqlStatement {
  return {
    sql: `INSERT INTO "Event" ("at", "modelId", "hostId", "kind", "state", "message", "data") VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING "id"`,
    args: [sqliteDate(e.at), e.modelId, e.hostId, e.kind, e.state, e.message, e.data],
    returnsRows: true,
  };
}
