/**
 * One point a minute per model for 24 hours, in SQLite (MetricMinute).
 * Written once a minute from the in-memory points of that minute; rows
 * older than RETAIN_MS are deleted at each write, so the table holds at
 * most models × 1440 rows.
 */
import type { Db } from "~/server/db/client";
import type { MinutePoint } from "./history";

export const RETAIN_MS = 24 * 60 * 60_000;

export interface MinuteStore {
  /** Writes the minutes (one per model), then deletes rows older than `nowMs - RETAIN_MS`; resolves with how many it deleted. */
  write(rows: readonly { modelId: string; point: MinutePoint }[], nowMs: number): Promise<number>;
  /** A model's minutes at or after `sinceMs`, oldest first. */
  read(modelId: string, sinceMs: number): Promise<MinutePoint[]>;
}

export function createMinuteStore(db: Db): MinuteStore {
  return {
    async write(rows, nowMs) {
      if (rows.length > 0) {
        // A model deleted since its points were taken has no row to point to: skip those.
        const known = new Set((await db.model.findMany({ where: { id: { in: rows.map((r) => r.modelId) } }, select: { id: true } })).map((m) => m.id));
        const data = rows
          .filter((r) => known.has(r.modelId))
          .map(({ modelId, point: p }) => ({ modelId, at: new Date(p.t), generatedTokensPerS: p.generatedTokensPerS, promptTokensPerS: p.promptTokensPerS, inFlight: p.inFlight, queued: p.queued, latencyMs: p.latencyMs, memoryBytes: p.memoryBytes }));
        // The same minute twice (a clock step back): the later write wins.
        await db.$transaction([...data.map((d) => db.metricMinute.upsert({ where: { modelId_at: { modelId: d.modelId, at: d.at } }, create: d, update: d }))]);
      }
      const pruned = await db.metricMinute.deleteMany({ where: { at: { lt: new Date(nowMs - RETAIN_MS) } } });
      return pruned.count;
    },
    async read(modelId, sinceMs) {
      const rows = await db.metricMinute.findMany({ where: { modelId, at: { gte: new Date(sinceMs) } }, orderBy: { at: "asc" } });
      return rows.map((r) => ({ t: r.at.getTime(), generatedTokensPerS: r.generatedTokensPerS, promptTokensPerS: r.promptTokensPerS, inFlight: r.inFlight, queued: r.queued, latencyMs: r.latencyMs, memoryBytes: r.memoryBytes }));
    },
  };
}
