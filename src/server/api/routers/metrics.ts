/**
 * metrics.*: the figures the dashboard draws (the Prometheus text is at
 * GET /api/metrics). Points come from the app's metrics (services/metrics/):
 * the last hour in memory at 5 s, the last 24 hours in SQLite at a minute.
 */
import { z } from "zod";
import { publicProcedure, router } from "../trpc";

const id = z.string().trim().min(1, "must not be empty").max(64, "must be at most 64 characters");

/** Points a fleet row's sparkline shows: 5 minutes at 5 s. */
export const SPARKLINE_POINTS = 60;

export const metricsRouter = router({
  /** Per model id: generated tokens/s of the last 5 minutes (oldest first; null: unknown), and each loading model's progress. */
  fleet: publicProcedure.query(({ ctx }) => {
    const m = ctx.runtime.metrics;
    return {
      intervalMs: m.intervalMs,
      sparklines: Object.fromEntries(m.sparklines(SPARKLINE_POINTS)),
      progress: Object.fromEntries(m.loadProgressAll()),
    };
  }),
  /** One model's points: `hour` (5 s, from memory) or `day` (one a minute, from SQLite), oldest first; times are epoch ms. */
  model: publicProcedure
    .input(z.object({ id, range: z.enum(["hour", "day"]).default("hour") }).strict())
    .query(async ({ ctx, input }) => {
      const m = ctx.runtime.metrics;
      const now = Date.now();
      if (input.range === "hour") return { range: input.range, stepMs: m.intervalMs, points: m.history(input.id, now - 3_600_000) };
      return { range: input.range, stepMs: 60_000, points: await m.minutes(input.id, now - 86_400_000) };
    }),
  /**
   * The gateway's queue at one model now: requests being answered (`running`, at most its concurrency) and
   * waiting for a place (`queued`, FIFO); both 0 when none. The worker thread reports changes each second.
   */
  queue: publicProcedure.input(z.object({ id }).strict()).query(({ ctx, input }) => {
    const q = ctx.runtime.metrics.gateway.queues().find((x) => x.modelId === input.id);
    return { running: q?.running ?? 0, queued: q?.queued ?? 0 };
  }),
  /** How far a loading model is (null: it is not loading): from its log's load steps, or its elapsed time against its last load. */
  loadProgress: publicProcedure.input(z.object({ id }).strict()).query(({ ctx, input }) => ctx.runtime.metrics.loadProgress(input.id)),
});
