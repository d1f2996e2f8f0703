/**
 * Prepared SQL statements run on the Prisma client's own connection, through
 * its driver adapter (Prisma's documented SqlDriverAdapter interface), for
 * the few writes on the fleet's hot path (fleet/state-sql.ts).
 *
 * Why: a raw statement sent through the Prisma client still goes through
 * its query engine (planning, interpretation, result mapping): about 1 ms
 * of CPU for a transaction of a state write and its event on this machine,
 * against about 0.3 ms through the adapter, and about 0.1 ms on the
 * adapter's connection with the statements prepared once. A start of 16
 * servers commits some 25 such transactions while the servers load, on the
 * same event loop as the agent that is starting them
 * (bench/control-plane.ts).
 *
 * Same connection, same rules: statements always run in a transaction of
 * their own, which takes the adapter's transaction lock like the client's
 * `$transaction` does. The connection is shared, so a statement run outside
 * that lock while an interactive transaction of the client is open would
 * become part of it, and vanish with its rollback.
 */
import type { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import type { Database as Connection, Statement } from "better-sqlite3";
import type { Db } from "./client";

/** The connected adapter (Prisma's SqlDriverAdapter). */
export type SqlDriver = Awaited<ReturnType<PrismaBetterSqlite3["connect"]>>;
type SqlQuery = Parameters<SqlDriver["queryRaw"]>[0];

/** A bound value: text, an integer, or NULL. */
export type SqlValue = string | number | null;

/** One statement with `?` placeholders. `returnsRows`: it has a RETURNING clause (or is a query); its rows come back. */
export interface SqlStatement {
  sql: string;
  args: SqlValue[];
  returnsRows?: boolean;
}

/** A statement's outcome: its rows (each a list of column values, in order) or the number of rows it changed. */
export type SqlOutcome = { rows: unknown[][] } | { changes: number };

const drivers = new WeakMap<Db, () => SqlDriver | null>();

/** Records how to reach `db`'s connected adapter (client.ts, when it opens a database). */
export function registerSqlDriver(db: Db, current: () => SqlDriver | null): void {
  drivers.set(db, current);
}

/** The adapter `db` is connected through (connecting first if it has not yet); throws for a client not opened by openDatabase. */
export async function sqlDriverOf(db: Db): Promise<SqlDriver> {
  const current = drivers.get(db);
  if (!current) throw new Error("this database client was not opened with openDatabase (db/client.ts): its connection is unknown");
  const connected = current();
  if (connected) return connected;
  await db.$connect();
  const now = current();
  if (!now) throw new Error("the database client connected without its adapter's connection being seen");
  return now;
}

function query(s: SqlStatement): SqlQuery {
  return { sql: s.sql, args: s.args, argTypes: s.args.map((a) => ({ scalarType: typeof a === "number" ? "int" : "string", arity: "scalar" })) };
}

/**
 * The better-sqlite3 connection under the adapter, when the adapter exposes
 * it (7.10 does, as `client`); null otherwise, and statements then go
 * through the adapter's own query methods (which prepare each statement
 * again: an event insert takes ~65 µs to prepare here, more than to run).
 */
export function connectionOf(driver: SqlDriver): Connection | null {
  const c = (driver as unknown as { client?: Partial<Connection> }).client;
  return c && typeof c.prepare === "function" && typeof c.inTransaction === "boolean" ? (c as Connection) : null;
}

/** Prepared statements per connection, by SQL text: a handful of shapes (state-sql.ts), bounded anyway. */
const statements = new WeakMap<Connection, Map<string, Statement>>();
const MAX_PREPARED = 64;

function prepared(c: Connection, sql: string): Statement {
  let cache = statements.get(c);
  if (!cache) statements.set(c, (cache = new Map()));
  let stmt = cache.get(sql);
  if (!stmt) {
    if (cache.size >= MAX_PREPARED) cache.clear();
    stmt = c.prepare(sql);
    cache.set(sql, stmt);
  }
  return stmt;
}

/** The connection returns integers as BigInt (the adapter's setting); ids and counts fit in a number. */
const fromSqlite = (v: unknown): unknown => (typeof v === "bigint" && Number.isSafeInteger(Number(v)) ? Number(v) : v);

/** The adapter's error names only a kind ("ForeignKeyConstraintViolation"); SQLite's own text says more. */
function explained(err: unknown, s: SqlStatement): Error {
  const cause = (err as { cause?: { originalMessage?: unknown } } | null)?.cause;
  const text = typeof cause?.originalMessage === "string" ? cause.originalMessage : err instanceof Error ? err.message : String(err);
  return new Error(`${s.sql.split(" ", 3).join(" ")} …: ${text}`, { cause: err });
}

function runOn(c: Connection, s: SqlStatement): SqlOutcome {
  try {
    const stmt = prepared(c, s.sql);
    if (s.returnsRows) return { rows: (stmt.raw(true).all(...s.args) as unknown[][]).map((row) => row.map(fromSqlite)) };
    return { changes: stmt.run(...s.args).changes };
  } catch (err) {
    throw explained(err, s);
  }
}

async function runThrough(q: Pick<SqlDriver, "queryRaw" | "executeRaw">, s: SqlStatement): Promise<SqlOutcome> {
  try {
    return s.returnsRows ? { rows: (await q.queryRaw(query(s))).rows } : { changes: await q.executeRaw(query(s)) };
  } catch (err) {
    throw explained(err, s);
  }
}

/**
 * Runs the statements in order, in one transaction (after any transaction
 * of the client's that is open): all are written or, when one fails, none
 * (the error is rethrown). Resolves with each statement's outcome, in order.
 */
export async function runStatements(db: Db, list: readonly SqlStatement[], options: { viaAdapter?: boolean } = {}): Promise<SqlOutcome[]> {
  const driver = await sqlDriverOf(db);
  const tx = await driver.startTransaction();
  // viaAdapter (tests): the path taken when the adapter does not expose its connection.
  const c = options.viaAdapter ? null : connectionOf(driver);
  // With usePhantomQuery false (this adapter), the caller sends COMMIT / ROLLBACK; commit() / rollback() release the lock.
  const send = async (sql: "COMMIT" | "ROLLBACK") => {
    if (tx.options.usePhantomQuery) return;
    if (c) prepared(c, sql).run();
    else await tx.executeRaw({ sql, args: [], argTypes: [] });
  };
  let outcomes: SqlOutcome[];
  try {
    // On the connection, the whole transaction runs synchronously once the lock is held.
    if (c) outcomes = list.map((s) => runOn(c, s));
    else {
      outcomes = [];
      for (const s of list) outcomes.push(await runThrough(tx, s));
    }
    await send("COMMIT");
  } catch (err) {
    // A ROLLBACK that fails (the failed COMMIT already ended the transaction) must not hide why.
    await send("ROLLBACK").catch(() => undefined);
    await tx.rollback();
    throw err;
  }
  await tx.commit();
  return outcomes;
}
