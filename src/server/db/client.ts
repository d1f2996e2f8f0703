/**
 * The Prisma client over better-sqlite3. One per process (cached on
 * globalThis so Next's separate bundles and dev reloads share it).
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3";
import { PrismaClient } from "~/generated/prisma/client";
import { migrate } from "./migrate";

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
  return new PrismaClient({ adapter: withConnectionPragmas(new PrismaBetterSqlite3({ url: file, timeout: 10_000 })) });
}


/**
 * The adapter has one connection. Pragmas are per connection, and without
 * these every commit is an fsync (synchronous=FULL: ~9 ms a write here,
 * against ~2.5 ms with NORMAL, which WAL keeps crash-safe), and SQLite
 * ignores the schema's ON DELETE CASCADE (foreign_keys is off by default).
 */
function withConnectionPragmas(factory: PrismaBetterSqlite3): PrismaBetterSqlite3 {
  const connect = factory.connect.bind(factory);
  return Object.assign(Object.create(Object.getPrototypeOf(factory) as object) as PrismaBetterSqlite3, factory, {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => {
      const adapter = await connect();
      await adapter.executeScript("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;");
      return adapter;
    },
    connectToShadowDb: factory.connectToShadowDb.bind(factory),
  });
}
