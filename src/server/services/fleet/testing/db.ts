/** A real, migrated SQLite file in a temp folder for one test, and a silent logger. */
import path from "node:path";
import { tempDir } from "../../../../../test/harness/temp";
import { openDatabase, type Db } from "~/server/db/client";
import { createLogger, type Logger } from "~/server/log/logger";

export interface TestDb {
  db: Db;
  file: string;
  dir: string;
  /** Disconnects and removes the folder. */
  cleanup(): Promise<void>;
}

export function testDb(prefix = "synapse-fleet-"): TestDb {
  const t = tempDir(prefix);
  const file = path.join(t.dir, "data", "synapse.db");
  const db = openDatabase(file);
  return {
    db,
    file,
    dir: t.dir,
    async cleanup() {
      await db.$disconnect().catch(() => undefined);
      t.cleanup();
    },
  };
}

/** Quiet unless SYNAPSE_TEST_LOG=1. */
export function testLogger(component = "test"): Logger {
  return createLogger(component, process.env.SYNAPSE_TEST_LOG === "1" ? "debug" : "error");
}
