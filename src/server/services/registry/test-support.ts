/**
 * For the registry's tests: a fresh, migrated SQLite file in a temp folder,
 * and helpers to look at errors. Not imported by app code.
 */
import path from "node:path";
import { expect } from "vitest";
import { tempDir } from "../../../../test/harness/temp";
import { openDatabase, type Db } from "~/server/db/client";
import { ServiceError } from "../errors";

export interface TestDb {
  db: Db;
  file: string;
  dir: string;
  close: () => Promise<void>;
}

export function freshDb(): TestDb {
  const t = tempDir("synapse-registry-");
  const file = path.join(t.dir, "synapse.db");
  const db = openDatabase(file);
  return {
    db,
    file,
    dir: t.dir,
    close: async () => {
      await db.$disconnect();
      t.cleanup();
    },
  };
}

/** The ServiceError a promise rejects with (fails the test otherwise). */
export async function serviceError(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ServiceError);
    return e as ServiceError;
  }
  throw new Error("expected a ServiceError, but the call succeeded");
}

/** Every row of the registry's tables, for "nothing changed" checks. */
export async function snapshot(db: Db): Promise<unknown> {
  return {
    hosts: await db.host.findMany({ orderBy: { id: "asc" } }),
    models: await db.model.findMany({ orderBy: { id: "asc" } }),
    servers: await db.serverState.findMany({ orderBy: { modelId: "asc" } }),
    settings: await db.runtimeSettings.findMany(),
  };
}
