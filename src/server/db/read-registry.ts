/**
 * One read-only query of the registry's SQLite file, for what reads it before
 * the app (and Prisma) runs: the free port `npm start` suggests
 * (gateway/registered-ports.ts) and the quickstart's closing hint
 * (cli/quickstart-hint.ts). The file must exist (nothing is created); a lock
 * the running app holds is waited for BUSY_TIMEOUT_MS at most.
 *
 * better-sqlite3 (the driver under Prisma's adapter) is loaded at run time
 * from beside the caller, not bundled: a native module, and the gateway's
 * bundle holds only its own code (scripts/build-gateway.mjs).
 */
import { createRequire } from "node:module";

/** How long a read waits for a lock another process holds on the file (ms). */
export const BUSY_TIMEOUT_MS = 1000;

type Sqlite = new (file: string, options: { readonly: boolean; fileMustExist: boolean; timeout: number }) => {
  prepare(sql: string): { all(): unknown[] };
  close(): void;
};

/** The rows of `sql` in the SQLite file `file` (absolute path). Throws what the driver throws (no file, no table, a lock held too long). */
export function readRegistryRows<T>(file: string, sql: string): T[] {
  const Database = createRequire(import.meta.url)("better-sqlite3") as Sqlite;
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}
