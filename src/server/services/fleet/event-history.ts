/**
 * The event log as history: persisted events (events.ts writes them), newest
 * first, a page at a time, for the dashboard's Activity page and typed
 * clients. "Why did my model stop at 3 am?" across the fleet.
 *
 * Paging is by event id, not by offset: a page is the newest `limit` events
 * older than `cursor` (an id), so events written while someone pages never
 * shift the pages (no gap, no repeat). A model's events go with the model
 * (ON DELETE CASCADE); events with no model are fleet or host events (start
 * all, a host's link, a host edit) and stay.
 */
import { z } from "zod";
import type { Db } from "~/server/db/client";
import { parseInput } from "../registry/input";
import { EVENT_KINDS, rowToEvent, type EventBus, type RecordedEvent } from "./events";

const id = z.string().trim().min(1, "must not be empty").max(64, "must be at most 64 characters");

export const EVENT_HISTORY_LIMIT = { default: 100, max: 500 } as const;

/**
 * A page of history. `cursor`: only events with a smaller id (the previous
 * page's `nextCursor`); absent or null: the newest. The name is tRPC's (its
 * infinite queries pass `cursor` and `direction`); only older pages
 * ("forward") are served, so `direction` must not be "backward".
 */
export const eventHistoryInput = z
  .object({
    cursor: z.number().int("must be a whole number").min(1, "must be an event id (1 or more)").max(Number.MAX_SAFE_INTEGER).nullish(),
    limit: z.number().int("must be a whole number").min(1, "must be at least 1").max(EVENT_HISTORY_LIMIT.max, `must be at most ${EVENT_HISTORY_LIMIT.max}`).default(EVENT_HISTORY_LIMIT.default),
    modelId: id.optional(),
    hostId: id.optional(),
    kind: z.enum(EVENT_KINDS, { error: `must be one of ${EVENT_KINDS.join(", ")}` }).optional(),
    direction: z.literal("forward", { error: 'only "forward" (older events) is served' }).optional(),
  })
  .strict();

export type EventHistoryInput = z.input<typeof eventHistoryInput>;

/** A persisted event with the names a person reads: its model's (null for a fleet or host event) and its host's (null when none, or the host was deleted). */
export interface HistoryEvent extends RecordedEvent {
  modelName: string | null;
  hostName: string | null;
}

export interface EventHistoryPage {
  /** Newest first. */
  events: HistoryEvent[];
  /** The `cursor` of the next (older) page; null when this page reached the oldest matching event. */
  nextCursor: number | null;
  /**
   * Stream id to subscribe from (`servers.events`' `lastEventId`) so that
   * every event after this page arrives live, none twice: every event up to
   * it was committed when the page was read, so it is on the page, on an
   * older page, or does not match the filters.
   */
  liveFrom: string;
}

/**
 * One page of the event log, newest first, with model and host names.
 * `bus` gives the newest published id (read before the rows, see `liveFrom`).
 * Throws ServiceError BAD_REQUEST naming the field for bad input.
 */
export async function eventHistory(db: Db, input: EventHistoryInput, bus: Pick<EventBus, "lastEventId">): Promise<EventHistoryPage> {
  const f = parseInput(eventHistoryInput, input);
  // Read first: ids up to this one are committed (the bus publishes a row only once it is written).
  const published = Number(bus.lastEventId());
  const rows = await db.event.findMany({
    where: {
      ...(f.cursor ? { id: { lt: f.cursor } } : {}),
      ...(f.modelId !== undefined ? { modelId: f.modelId } : {}),
      ...(f.hostId !== undefined ? { hostId: f.hostId } : {}),
      ...(f.kind !== undefined ? { kind: f.kind } : {}),
    },
    orderBy: { id: "desc" },
    // One more than the page, to know whether an older page exists.
    take: f.limit + 1,
    include: { model: { select: { name: true } } },
  });
  const more = rows.length > f.limit;
  const page = more ? rows.slice(0, f.limit) : rows;
  const hostIds = [...new Set(page.flatMap((r) => (r.hostId ? [r.hostId] : [])))];
  const hosts = hostIds.length ? await db.host.findMany({ where: { id: { in: hostIds } }, select: { id: true, name: true } }) : [];
  const hostNames = new Map(hosts.map((h) => [h.id, h.name]));
  const events = page.map(({ model, ...row }) => ({ ...rowToEvent(row), modelName: model?.name ?? null, hostName: row.hostId ? (hostNames.get(row.hostId) ?? null) : null }));
  // A page read after the bus published more (a write committed between the two reads) may hold newer ids.
  const newest = page[0]?.id ?? 0;
  return { events, nextCursor: more ? page[page.length - 1]!.id : null, liveFrom: String(Math.max(published, newest)) };
}
