/**
 * The ports registered to models on this machine's hosts (link kind
 * "local"), read straight from the app's SQLite file: the free port the app
 * suggests when its own is taken (listen-failure.ts) must not be one a model
 * starts on. Read when a listen fails, before the app (and Prisma) runs:
 * scripts/start.mjs's look before the build, the worker's listen after it.
 *
 * The file is read as the quickstart's hint reads it (db/read-registry.ts:
 * read-only, it must exist): a first start (no database yet) reads nothing
 * and creates nothing.
 */
import { databaseFile as databaseFilePath } from "../db/database-file";
import { readRegistryRows } from "../db/read-registry";

const LOCAL_MODEL_PORTS_SQL = `SELECT m."port" AS port, m."name" AS name FROM "Model" m JOIN "Host" h ON h."id" = m."hostId" WHERE h."linkKind" = 'local' ORDER BY m."port"`;

/**
 * port → model name for every model on a local host, from the SQLite file `databaseFile` (a path, or a `file:` URL
 * as DATABASE_URL holds it, read as the app reads it: database-file.ts). Never throws: an empty map when the file does not exist, holds no
 * registry yet (not migrated), or cannot be read (the error is in `error`).
 */
export function localModelPorts(databaseFile: string): { ports: ReadonlyMap<number, string>; error: string | null } {
  try {
    const rows = readRegistryRows<{ port: number; name: string }>(databaseFilePath(databaseFile), LOCAL_MODEL_PORTS_SQL);
    return { ports: new Map(rows.map((r) => [Number(r.port), String(r.name)])), error: null };
  } catch (err) {
    return { ports: new Map(), error: err instanceof Error ? err.message : String(err) };
  }
}
