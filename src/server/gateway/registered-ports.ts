/**
 * The ports registered to models on this machine's hosts (link kind
 * "local"), read straight from the app's SQLite file: the free port the app
 * suggests when its own is taken (listen-failure.ts) must not be one a model
 * starts on. Read when a listen fails, before the app (and Prisma) runs:
 * scripts/start.mjs's look before the build, the worker's listen after it.
 *
 * better-sqlite3 (the driver under Prisma's adapter) is loaded at run time
 * from beside the bundle, not bundled (a native module; the gateway's
 * bundle holds only its own code: scripts/build-gateway.mjs), and only here.
 * The file is opened read-only and must exist: a first start (no database
 * yet) reads nothing and creates nothing.
 */
import { createRequire } from "node:module";
import { databaseFile as databaseFilePath } from "../db/database-file";

type Database = new (file: string, options: { readonly: boolean; fileMustExist: boolean; timeout: number }) => {
  prepare(sql: string): { all(): unknown[] };
  close(): void;
};

/** How long a read waits for a write lock the running app holds (ms). */
const BUSY_TIMEOUT_MS = 1000;

const LOCAL_MODEL_PORTS_SQL = `SELECT m."port" AS port, m."name" AS name FROM "Model" m JOIN "Host" h ON h."id" = m."hostId" WHERE h."linkKind" = 'local' ORDER BY m."port"`;

/**
 * port → model name for every model on a local host, from the SQLite file `databaseFile` (a path, or a `file:` URL
 * as DATABASE_URL holds it, read as the app reads it: database-file.ts). Never throws: an empty map when the file does not exist, holds no
 * registry yet (not migrated), or cannot be read (the error is in `error`).
 */
export function localModelPorts(databaseFile: string): { ports: ReadonlyMap<number, string>; error: string | null } {
  const file = databaseFilePath(databaseFile);
  let db: InstanceType<Database> | null = null;
  try {
    const Sqlite = createRequire(import.meta.url)("better-sqlite3") as Database;
    db = new Sqlite(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    const rows = db.prepare(LOCAL_MODEL_PORTS_SQL).all() as { port: number; name: string }[];
    return { ports: new Map(rows.map((r) => [Number(r.port), String(r.name)])), error: null };
  } catch (err) {
    return { ports: new Map(), error: err instanceof Error ? err.message : String(err) };
  } finally {
    db?.close();
  }
}
