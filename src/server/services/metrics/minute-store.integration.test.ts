/**
 * The 24-hour table on a real SQLite file: a day and more of minutes
 * written as the app writes them (one row per model each minute, pruning at
 * each write) leaves only the last 24 hours, and a deleted model's rows go
 * with it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { testDb, type TestDb } from "~/server/services/fleet/testing/db";
import type { MinutePoint } from "./history";
import { createMinuteStore, RETAIN_MS } from "./minute-store";

let t: TestDb | null = null;
afterEach(async () => {
  await t?.cleanup();
  t = null;
});

const point = (ms: number): MinutePoint => ({ t: ms, generatedTokensPerS: 1, promptTokensPerS: 2, inFlight: 1, queued: 0, latencyMs: 10, memoryBytes: 1e6 });

describe("MetricMinute: one point a minute for 24 hours", () => {
  it("stays pruned to the last 24 hours as minutes are written", async () => {
    t = testDb("synapse-metrics-");
    const host = await t.db.host.create({ data: { name: "h" } });
    const a = await t.db.model.create({ data: { name: "a", hostId: host.id, filePath: "/m/a.gguf", port: 9001 } });
    const b = await t.db.model.create({ data: { name: "b", hostId: host.id, filePath: "/m/b.gguf", port: 9002 } });
    const store = createMinuteStore(t.db);
    const start = Date.UTC(2026, 10, 1);
    // 26 hours of minutes, written every 10th minute to keep the test short (each write prunes).
    const end = start + 26 * 3_600_000;
    let pruned = 0;
    for (let m = start; m < end; m += 10 * 60_000) pruned += await store.write([{ modelId: a.id, point: point(m) }, { modelId: b.id, point: point(m) }], m + 60_000);
    const rows = await t.db.metricMinute.findMany({ orderBy: { at: "asc" } });
    const now = end - 10 * 60_000 + 60_000;
    expect(pruned).toBeGreaterThan(0);
    expect(rows.length).toBe(2 * (24 * 6));
    expect(rows[0]!.at.getTime()).toBeGreaterThanOrEqual(now - RETAIN_MS);
    expect(Math.max(...rows.map((r) => r.at.getTime()))).toBe(end - 10 * 60_000);

    // Read back oldest first, for one model.
    const read = await store.read(a.id, now - 3_600_000);
    expect(read.length).toBe(6);
    expect(read[0]).toMatchObject({ generatedTokensPerS: 1, promptTokensPerS: 2, inFlight: 1, latencyMs: 10, memoryBytes: 1e6 });

    // A deleted model's minutes go with it; a row for a model deleted meanwhile is skipped, not an error.
    await t.db.model.delete({ where: { id: b.id } });
    expect(await t.db.metricMinute.count({ where: { modelId: b.id } })).toBe(0);
    await store.write([{ modelId: b.id, point: point(end) }, { modelId: a.id, point: point(end) }], end + 60_000);
    expect(await t.db.metricMinute.count({ where: { modelId: b.id } })).toBe(0);
  });
});
