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
  const adapter = new PrismaBetterSqlite3({ url: file, timeout: 10_000 });
  return new PrismaClient({ adapter });
}

