/**
 * Applies Prisma's migration SQL files at start, with no Prisma engine.
 *
 * Prisma's CLI needs a native schema engine that is downloaded on first use;
 * the app must start offline (and inside a slim container), so it applies
 * `prisma/migrations/<stamp>_<name>/migration.sql` itself and records each in
 * `_prisma_migrations` with the same columns and checksum (SHA-256 of the
 * file) that `prisma migrate deploy` writes. Either tool can take over later.
 */
import { createHash, randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "MigrationError";
  }
}

const PRISMA_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`;

/** The migration folders in order (their names start with a sortable stamp). */
export function readMigrations(dir: string): MigrationFile[] {
  if (!fs.existsSync(dir)) throw new MigrationError(`migrations folder not found: ${dir}`);
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(dir, d.name, "migration.sql")))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = fs.readFileSync(path.join(dir, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    });
}

/** Opens the SQLite file with the settings every connection of the app uses. */
export function openSqlite(file: string): Database.Database {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file, { timeout: 10_000 });
  // WAL lets the dashboard read while the reconciler writes; it is persistent in the file.
  db.pragma("journal_mode = WAL");
  db.pragma("busy_timeout = 10000");
  db.pragma("foreign_keys = ON");
  db.pragma("synchronous = NORMAL");
  return db;
}

/**
 * Applies every pending migration, each in its own transaction. Idempotent.
 * Refuses to run when an applied migration's file changed or one failed halfway,
 * as Prisma does, instead of guessing.
 */
export function migrate(file: string, migrationsDir: string, log: (msg: string, data?: object) => void = () => {}): MigrateResult {
  const migrations = readMigrations(migrationsDir);
  const db = openSqlite(file);
  try {
    db.exec(PRISMA_MIGRATIONS_TABLE);
    const result: MigrateResult = { applied: [], alreadyApplied: [] };
    // IMMEDIATE takes the write lock up front, so two processes starting at
    // once apply each migration exactly once.
    const lock = db.transaction(() => {
      const rows = db
        .prepare(`SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"`)
        .all() as { migration_name: string; checksum: string; finished_at: string | null; rolled_back_at: string | null }[];
      const done = new Map(rows.filter((r) => r.rolled_back_at === null).map((r) => [r.migration_name, r]));
      for (const r of done.values()) {
        if (r.finished_at === null) {
          throw new MigrationError(
            `migration ${r.migration_name} started but did not finish; restore the database from a backup or resolve it with \`prisma migrate resolve\``,
          );
        }
      }
      for (const m of migrations) {
        const prior = done.get(m.name);
        if (prior) {
          if (prior.checksum !== m.checksum) {
            throw new MigrationError(`migration ${m.name} was changed after it was applied (checksum differs); migrations are append-only, add a new one instead`);
          }
          result.alreadyApplied.push(m.name);
          continue;
        }
        const id = randomUUID();
        db.prepare(`INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count) VALUES (?, ?, ?, ?, 0)`).run(
          id,
          m.checksum,
          m.name,
          Date.now(),
        );
        try {
          db.exec(m.sql);
        } catch (cause) {
          throw new MigrationError(`migration ${m.name} failed: ${(cause as Error).message}`, { cause });
        }
        db.prepare(`UPDATE "_prisma_migrations" SET finished_at = ?, applied_steps_count = 1 WHERE id = ?`).run(Date.now(), id);
        result.applied.push(m.name);
        log("migration applied", { migration: m.name });
      }
    });
    lock.immediate();
    return result;
  } finally {
    db.close();
  }
}
