import { afterEach, describe, expect, it } from "vitest";
import { runStatements, type SqlStatement } from "~/server/db/sql-driver";
import type { Db } from "~/server/db/client";
import { insertEventSql, updateStatesSql, upsertStateSql } from "./state-sql";
import { testDb, type TestDb } from "./testing/db";

/** Runs one statement on its own: the rows it changed. */
async function changes(db: Db, s: SqlStatement): Promise<number> {
  const [o] = await runStatements(db, [s]);
  return (o as { changes: number }).changes;
}

/** Runs one insert on its own: the id it returned. */
async function insertedId(db: Db, s: SqlStatement): Promise<number> {
  const [o] = await runStatements(db, [s]);
  return Number((o as { rows: unknown[][] }).rows[0]![0]);
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ t: TestDb; modelId: string; hostId: string }> {
  const t = testDb("synapse-state-sql-");
  cleanups.push(() => t.cleanup());
  const host = await t.db.host.create({ data: { name: "local" } });
  const m = await t.db.model.create({ data: { name: "alpha", hostId: host.id, filePath: "/m/a.gguf", port: 9001, server: { create: { desired: "running", restarts: 2 } } } });
  return { t, modelId: m.id, hostId: host.id };
}

describe("hot-path SQL writes", () => {
  it("a state write sets only the columns given; Prisma reads back the same values and dates it would have written", async () => {
    const { t, modelId } = await setup();
    const startedAt = new Date("2026-11-26T04:32:01.044Z");
    const now = new Date("2026-11-26T04:32:02.500Z");
    expect(await changes(t.db, upsertStateSql(modelId, { observed: "starting", pid: 4242, port: 9001, startedAt, lastError: null }, now))).toBe(1);
    const row = await t.db.serverState.findUniqueOrThrow({ where: { modelId } });
    expect(row).toMatchObject({ observed: "starting", pid: 4242, port: 9001, startedAt, lastError: null, updatedAt: now, desired: "running", restarts: 2 });
    // Ordering and comparison in SQL work across both writers' rows.
    await t.db.serverState.update({ where: { modelId }, data: { readyAt: new Date("2026-11-26T04:32:03.000Z") } });
    expect(await t.db.serverState.count({ where: { startedAt: { lt: new Date("2026-11-26T04:32:01.045Z") }, readyAt: { gt: startedAt } } })).toBe(1);
  });

  it("creates the state row when it is missing, and fails on a model that does not exist", async () => {
    const { t, modelId } = await setup();
    await t.db.serverState.delete({ where: { modelId } });
    await changes(t.db, upsertStateSql(modelId, { observed: "ready", pid: 7 }));
    expect(await t.db.serverState.findUniqueOrThrow({ where: { modelId } })).toMatchObject({ observed: "ready", pid: 7, desired: "stopped" });
    await expect(changes(t.db, upsertStateSql("no-such-model", { observed: "ready" }))).rejects.toThrow(/FOREIGN KEY/i);
    expect(await t.db.serverState.count()).toBe(1);
  });

  it("refuses a column that is not in its list, and values of the wrong kind, before touching the database", async () => {
    const { t, modelId } = await setup();
    expect(() => upsertStateSql(modelId, { observed: "ready", ["modelId\" = 'x'; --"]: "x" } as never)).toThrow(/no writable column/);
    expect(() => upsertStateSql(modelId, { pid: 1.5 })).toThrow(/not an integer/);
    expect(() => upsertStateSql(modelId, { startedAt: "yesterday" })).toThrow(/not a date/);
    expect(await t.db.serverState.findUniqueOrThrow({ where: { modelId } })).toMatchObject({ observed: "stopped", pid: null });
  });

  it("a write of many rows sets the columns of those models' rows (only where observed is one of those given), creates none, and leaves the others", async () => {
    const { t, modelId, hostId } = await setup();
    const beta = await t.db.model.create({ data: { name: "beta", hostId, filePath: "/m/b.gguf", port: 9002, server: { create: { observed: "failed" } } } });
    const gamma = await t.db.model.create({ data: { name: "gamma", hostId, filePath: "/m/c.gguf", port: 9003, server: { create: { observed: "exited" } } } });
    const noRow = await t.db.model.create({ data: { name: "delta", hostId, filePath: "/m/d.gguf", port: 9004 } });
    const at = new Date("2026-11-30T06:40:00.123Z");
    const ids = [modelId, beta.id, noRow.id];
    const [stopped, wanted] = await runStatements(t.db, [
      updateStatesSql(ids, { observed: "stopped" }, { observedIn: ["failed", "exited"] }),
      updateStatesSql(ids, { desired: "running", desiredAt: at, restarts: 0, nextRestartAt: null }),
    ]);
    expect([stopped, wanted]).toEqual([{ changes: 1 }, { changes: 2 }]);
    const rows = Object.fromEntries((await t.db.serverState.findMany()).map((s) => [s.modelId, s]));
    expect(rows[modelId]).toMatchObject({ observed: "stopped", desired: "running", desiredAt: at, restarts: 0 });
    expect(rows[beta.id]).toMatchObject({ observed: "stopped", desired: "running", desiredAt: at });
    // Not among the ids: untouched, though its observed state matched.
    expect(rows[gamma.id]).toMatchObject({ observed: "exited", desired: "stopped" });
    expect(rows[noRow.id]).toBeUndefined();
    expect(() => updateStatesSql(ids, { ["desired\" = 'x'; --"]: "x" } as never)).toThrow(/no writable column/);
  });

  it("an event row reads back through Prisma as written, with increasing ids", async () => {
    const { t, modelId, hostId } = await setup();
    const at = new Date("2026-11-26T04:32:01.044Z");
    const a = await insertedId(t.db, insertEventSql({ at, kind: "state", modelId, hostId, state: "ready", message: "alpha: ready", data: '{"pid":1}' }));
    const b = await insertedId(t.db, insertEventSql({ at, kind: "action", modelId: null, hostId: null, state: null, message: "start all", data: null }));
    expect(b).toBeGreaterThan(a);
    expect(await t.db.event.findUniqueOrThrow({ where: { id: a } })).toEqual({ id: a, at, kind: "state", modelId, hostId, state: "ready", message: "alpha: ready", data: '{"pid":1}' });
  });
});
