/**
 * Statements on the client's own connection (sql-driver.ts): all or nothing,
 * and never inside a transaction the Prisma client has open; on the
 * adapter's connection with prepared statements, or through the adapter's
 * query methods when it does not expose its connection.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Db } from "./client";
import { connectionOf, runStatements, sqlDriverOf, type SqlStatement } from "./sql-driver";

let dir: string;
let db: Db;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-sql-driver-"));
  db = openDatabase(path.join(dir, "synapse.db"));
});
afterAll(async () => {
  await db?.$disconnect();
  await rm(dir, { recursive: true, force: true });
});

const event = (message: string, modelId: string | null = null): SqlStatement => ({
  sql: `INSERT INTO "Event" ("at", "kind", "message", "modelId") VALUES (?, ?, ?, ?) RETURNING "id"`,
  args: ["2026-11-30T06:00:00.000+00:00", "action", message, modelId],
  returnsRows: true,
});

async function messages(): Promise<string[]> {
  return (await db.event.findMany({ select: { message: true }, orderBy: { id: "asc" } })).map((e) => e.message);
}

it("the adapter in use exposes its connection (without it every statement is prepared again: slower, still correct)", async () => {
  expect(connectionOf(await sqlDriverOf(db))).not.toBeNull();
});

describe.each([
  { path: "on the adapter's connection, statements prepared once", viaAdapter: false },
  { path: "through the adapter's query methods", viaAdapter: true },
])("statements on the client's connection: $path", ({ viaAdapter }) => {
  it("runs before the client connected, and returns each statement's rows or changes in order", async () => {
    const fresh = openDatabase(path.join(dir, `fresh-${viaAdapter}.db`));
    try {
      const [a, b, c] = await runStatements(fresh, [event("one"), event("two"), { sql: `UPDATE "Event" SET "message" = ? WHERE "message" = ?`, args: ["uno", "one"] }], { viaAdapter });
      const idA = (a as { rows: unknown[][] }).rows[0]![0];
      expect(typeof idA).toBe("number");
      expect((b as { rows: unknown[][] }).rows[0]![0]).toBe((idA as number) + 1);
      expect(c).toEqual({ changes: 1 });
      expect((await fresh.event.findMany({ orderBy: { id: "asc" } })).map((e) => e.message)).toEqual(["uno", "two"]);
    } finally {
      await fresh.$disconnect();
    }
  });

  it("writes all of a batch or none: a statement that fails rolls back the ones before it, and says why", async () => {
    const before = await messages();
    // The second names a model that does not exist: the foreign key fails.
    await expect(runStatements(db, [event("first of a failed batch"), event("orphan", "no-such-model")], { viaAdapter })).rejects.toThrow(/^INSERT INTO "Event" …: FOREIGN KEY constraint failed$/);
    expect(await messages()).toEqual(before);
    // The connection is usable afterwards (no transaction left open).
    await runStatements(db, [event(`after the failure ${viaAdapter}`)], { viaAdapter });
    expect(await messages()).toEqual([...before, `after the failure ${viaAdapter}`]);
  });

  it("waits for a transaction the client has open, so that transaction's rollback does not take its writes", async () => {
    let inside!: () => void;
    const opened = new Promise<void>((r) => (inside = r));
    const failing = db.$transaction(async (tx) => {
      await tx.event.create({ data: { kind: "action", message: `rolled back ${viaAdapter}` } });
      inside();
      await new Promise((r) => setTimeout(r, 100));
      throw new Error("validation failed");
    });
    await opened;
    const single = runStatements(db, [event(`single, kept ${viaAdapter}`)], { viaAdapter });
    const batch = runStatements(db, [event(`batch one, kept ${viaAdapter}`), event(`batch two, kept ${viaAdapter}`)], { viaAdapter });
    await expect(failing).rejects.toThrow("validation failed");
    await Promise.all([single, batch]);
    const all = await messages();
    expect(all).toEqual(expect.arrayContaining([`single, kept ${viaAdapter}`, `batch one, kept ${viaAdapter}`, `batch two, kept ${viaAdapter}`]));
    expect(all).not.toContain(`rolled back ${viaAdapter}`);
  });

  it("after the client disconnected, connects again rather than using the closed connection", async () => {
    await db.$disconnect();
    await runStatements(db, [event(`after a disconnect ${viaAdapter}`)], { viaAdapter });
    expect(await messages()).toContain(`after a disconnect ${viaAdapter}`);
  });
});
