/**
 * servers.*: what runs. Start and stop through the fleet service; status is
 * what the agents last reported; `events` is the live stream (state changes
 * and log lines) over SSE, resumable with the last event id; `history` is
 * the persisted event log, newest first, a page at a time.
 */
import { tracked } from "@trpc/server";
import { z } from "zod";
import { eventHistory, eventHistoryInput } from "~/server/services/fleet/event-history";
import { publicProcedure, router } from "../trpc";

const id = z.string().trim().min(1, "must not be empty").max(64, "must be at most 64 characters");
const idInput = z.object({ id }).strict();
/** force: start what does not fit in its host's memory budget too (the event log says so). */
const waitInput = z.object({ wait: z.boolean().default(true), force: z.boolean().default(false) }).strict().default({ wait: true, force: false });

export const serversRouter = router({
  /** Every enabled model on every host. With wait (default) resolves when each is ready or failed. */
  startAll: publicProcedure.input(waitInput).mutation(({ ctx, input }) => ctx.runtime.fleet.startAll({ wait: input.wait, force: input.force })),
  stopAll: publicProcedure.mutation(({ ctx }) => ctx.runtime.fleet.stopAll()),
  start: publicProcedure.input(idInput.extend({ wait: z.boolean().default(true), force: z.boolean().default(false) })).mutation(({ ctx, input }) => ctx.runtime.fleet.start(input.id, { wait: input.wait, force: input.force })),
  stop: publicProcedure.input(idInput).mutation(({ ctx, input }) => ctx.runtime.fleet.stop(input.id)),
  restart: publicProcedure.input(idInput.extend({ wait: z.boolean().default(true) })).mutation(({ ctx, input }) => ctx.runtime.fleet.restart(input.id, { wait: input.wait })),
  /** What each server runs as, with the gateway's counters from its ServerEntry: requests in flight, last used, idle unload time (ISO). */
  status: publicProcedure.query(({ ctx }) => ctx.runtime.fleet.status()),
  /** The app's shutdown as it goes (Fleet.shutdownState: what it waits for, what it does next), or null: the app runs. */
  shutdown: publicProcedure.query(({ ctx }) => ctx.runtime.fleet.shutdownState()),
  /** Each host's memory bar: its budget, what runs, what START ALL ENABLED would add and refuse (with the numbers). */
  memory: publicProcedure.query(({ ctx }) => ctx.runtime.fleet.memoryOverview()),
  logs: publicProcedure
    .input(
      z
        .object({
          id,
          lines: z.number().int("must be a whole number").min(1, "must be at least 1").max(5000, "must be at most 5000").default(200),
          /** Only the lines of the whole log (rotated copy and current file) containing this text, case ignored. */
          search: z.string().trim().min(1, "must not be empty").max(200, "must be at most 200 characters").optional(),
        })
        .strict(),
    )
    .query(({ ctx, input }) => ctx.runtime.fleet.logs(input.id, input.lines, input.search === undefined ? {} : { search: input.search })),
  /**
   * The event log, newest first: `limit` events (default 100, at most 500) older than `cursor` (an event id),
   * optionally one model's, one host's or one kind's, with model and host names. Subscribe to `events` with
   * the first page's `liveFrom` as `lastEventId` to get every later event once.
   */
  history: publicProcedure.input(eventHistoryInput).query(({ ctx, input }) => eventHistory(ctx.runtime.db, input, ctx.runtime.events)),
  /** Live state changes (and log lines with `logs: true`); reconnecting clients resume after `lastEventId`. */
  events: publicProcedure
    .input(
      z
        .object({
          lastEventId: z.string().max(64).regex(/^\d+(\.\d+)?$/, "must be an event id from this stream").nullish(),
          modelIds: z.array(id).max(512).optional(),
          logs: z.boolean().default(false),
        })
        .strict()
        .default({ logs: false }),
    )
    .subscription(async function* ({ ctx, input, signal }) {
      const stream = ctx.runtime.events.subscribe({ lastEventId: input.lastEventId ?? null, modelIds: input.modelIds, logs: input.logs, signal });
      for await (const item of stream) yield tracked(item.id, item.event);
    }),
});
