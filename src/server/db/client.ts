/**
 * The Prisma client over better-sqlite3. One per process (cached on
 * globalThis so Next's separate bundles and dev reloads share it).
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient } from "~/generated/prisma/client";
import { migrate } from "./migrate";
import { registerSqlDriver, type SqlDriver } from "./sql-driver";

export type Db = PrismaClient;

/** Repository root's migrations folder (the standalone build copies it beside the server). */
export function migrationsDir(): string {
  return process.env.SYNAPSE_MIGRATIONS_DIR ?? path.join(process.cwd(), "prisma", "migrations");
}

/** Migrates the file and opens a client on it. */
export function openDatabase(file: string, options: { migrate?: boolean; log?: (msg: string, data?: object) => void } = {}): Db {
  // A fresh machine has no ./data yet.
  mkdirSync(path.dirname(file), { recursive: true });
  if (options.migrate !== false) migrate(file, migrationsDir(), options.log);
  let connection: SqlDriver | null = null;
  const db = new PrismaClient({ adapter: withConnectionPragmas(new PrismaBetterSqlite3({ url: file, timeout: 10_000 }), (c) => (connection = c)) });
  // The fleet's hot-path writes use the same connection directly (sql-driver.ts).
  registerSqlDriver(db, () => connection);
  return db;
}


/**
 * The adapter has one connection. Pragmas are per connection, and without
 * these every commit is an fsync (synchronous=FULL: ~9 ms a write here,
 * against ~2.5 ms with NORMAL, which WAL keeps crash-safe), and SQLite
 * ignores the schema's ON DELETE CASCADE (foreign_keys is off by default).
 * `connected` is given each connection the client opens (null once it is closed).
 */
function withConnectionPragmas(factory: PrismaBetterSqlite3, connected: (c: SqlDriver | null) => void): PrismaBetterSqlite3 {
  const connect = factory.connect.bind(factory);
  return Object.assign(Object.create(Object.getPrototypeOf(factory) as object) as PrismaBetterSqlite3, factory, {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => {
      const adapter = await connect();
      await adapter.executeScript("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;");
      connected(adapter);
      // After $disconnect the client connects anew on its next query; until then there is no connection to use.
      const dispose = adapter.dispose.bind(adapter);
      adapter.dispose = () => {
        connected(null);
        return dispose();
      };
      return adapter;
    },
    connectToShadowDb: factory.connectToShadowDb.bind(factory),
  });
}
