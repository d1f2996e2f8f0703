/**
 * The event log's history query on a real SQLite file, with events written
 * by the real event bus: pages by id with no gap and no repeat, filters,
 * names, a deleted model's events gone with it, host events kept, bad input
 * refused, and the hand-over to the live stream (`liveFrom`).
 */
import { afterEach, describe, expect, it } from "vitest";
import { ServiceError } from "../errors";
import { eventHistory, type EventHistoryInput, type HistoryEvent } from "./event-history";
import { createEventBus, type EventBus, type StreamItem } from "./events";
import { testDb, testLogger, type TestDb } from "./testing/db";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Fleet {
  t: TestDb;
  bus: EventBus;
  mac: { id: string; name: string };
  linux: { id: string; name: string };
  alpha: string;
  beta: string;
  gamma: string;
}

async function setup(): Promise<Fleet> {
  const t = testDb("synapse-event-history-");
  cleanups.push(() => t.cleanup());
  const mac = await t.db.host.create({ data: { name: "mac" } });
  const linux = await t.db.host.create({ data: { name: "linux" } });
  const alpha = await t.db.model.create({ data: { name: "alpha", hostId: mac.id, filePath: "/m/a.gguf", port: 9001 } });
  const beta = await t.db.model.create({ data: { name: "beta", hostId: mac.id, filePath: "/m/b.gguf", port: 9002 } });
  const gamma = await t.db.model.create({ data: { name: "gamma", hostId: linux.id, filePath: "/m/c.gguf", port: 9001 } });
  const bus = await createEventBus({ db: t.db, log: testLogger() });
  cleanups.push(() => bus.close());
  return { t, bus, mac, linux, alpha: alpha.id, beta: beta.id, gamma: gamma.id };
}

/** Every page from the newest to the oldest, following nextCursor. */
async function allPages(f: Fleet, input: EventHistoryInput): Promise<HistoryEvent[][]> {
  const pages: HistoryEvent[][] = [];
  let cursor: number | null = null;
  for (let i = 0; i < 100; i++) {
    const page = await eventHistory(f.t.db, { ...input, cursor }, f.bus);
    pages.push(page.events);
    if (page.nextCursor === null) return pages;
    expect(page.nextCursor).toBe(page.events[page.events.length - 1]!.id);
    cursor = page.nextCursor;
  }
  throw new Error("more than 100 pages");
}

async function badRequest(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ServiceError);
  expect((err as ServiceError).code).toBe("BAD_REQUEST");
  return (err as ServiceError).message;
}

describe("event history", () => {
  it("pages newest first by id: every event once, in order, across pages of the default size and of a small one", async () => {
    const f = await setup();
    const models = [f.alpha, f.beta, f.gamma, null];
    const written = await Promise.all(
      Array.from({ length: 250 }, (_, i) => f.bus.append({ kind: i % 5 === 0 ? "action" : "state", modelId: models[i % 4], hostId: i % 4 === 2 ? f.linux.id : f.mac.id, state: i % 5 === 0 ? null : "ready", message: `event ${i}` })),
    );
    const ids = written.map((e) => e.id).sort((a, b) => b - a);

    const pages = await allPages(f, {});
    expect(pages.map((p) => p.length)).toEqual([100, 100, 50]);
    expect(pages.flat().map((e) => e.id)).toEqual(ids);

    const small = await allPages(f, { limit: 7 });
    expect(small.length).toBe(Math.ceil(250 / 7));
    expect(small.flat().map((e) => e.id)).toEqual(ids);

    // A page of exactly what is left says there is no older one.
    const exact = await eventHistory(f.t.db, { limit: 50, cursor: ids[199] }, f.bus);
    expect(exact.events.map((e) => e.id)).toEqual(ids.slice(200));
    expect(exact.nextCursor).toBeNull();
  });

  it("events written while someone pages do not shift the pages", async () => {
    const f = await setup();
    for (let i = 0; i < 30; i++) await f.bus.append({ kind: "action", modelId: f.alpha, message: `old ${i}` });
    const first = await eventHistory(f.t.db, { limit: 10 }, f.bus);
    for (let i = 0; i < 15; i++) await f.bus.append({ kind: "action", modelId: f.alpha, message: `new ${i}` });
    const second = await eventHistory(f.t.db, { limit: 10, cursor: first.nextCursor }, f.bus);
    const third = await eventHistory(f.t.db, { limit: 10, cursor: second.nextCursor }, f.bus);
    expect([...first.events, ...second.events, ...third.events].map((e) => e.message)).toEqual(Array.from({ length: 30 }, (_, i) => `old ${29 - i}`));
    expect(third.nextCursor).toBeNull();
  });

  it("filters by model, host and kind, and names each event's model and host", async () => {
    const f = await setup();
    await f.bus.append({ kind: "state", modelId: f.alpha, hostId: f.mac.id, state: "stopped", message: "alpha: unloaded after its idle time", data: { cause: "idle" } });
    await f.bus.append({ kind: "action", modelId: f.beta, hostId: f.mac.id, message: "beta: started on demand (a request named it)" });
    await f.bus.append({ kind: "error", modelId: f.gamma, hostId: f.linux.id, message: "gamma: start failed" });
    await f.bus.append({ kind: "host", hostId: f.linux.id, state: "disconnected", message: "host linux: link disconnected" });
    await f.bus.append({ kind: "action", hostId: f.mac.id, message: "host mac updated (upstreamMode, directAddress)" });
    await f.bus.append({ kind: "action", message: "start all: 3 models" });
    await f.bus.append({ kind: "state", modelId: f.alpha, hostId: f.mac.id, state: "starting", message: "alpha: starting" });

    const messages = async (input: EventHistoryInput) => (await eventHistory(f.t.db, input, f.bus)).events.map((e) => e.message);
    expect(await messages({ modelId: f.alpha })).toEqual(["alpha: starting", "alpha: unloaded after its idle time"]);
    expect(await messages({ hostId: f.linux.id })).toEqual(["host linux: link disconnected", "gamma: start failed"]);
    expect(await messages({ kind: "action" })).toEqual(["start all: 3 models", "host mac updated (upstreamMode, directAddress)", "beta: started on demand (a request named it)"]);
    expect(await messages({ kind: "host" })).toEqual(["host linux: link disconnected"]);
    expect(await messages({ kind: "error" })).toEqual(["gamma: start failed"]);
    expect(await messages({ hostId: f.mac.id, kind: "action" })).toEqual(["host mac updated (upstreamMode, directAddress)", "beta: started on demand (a request named it)"]);
    expect(await messages({ modelId: f.alpha, kind: "error" })).toEqual([]);
    expect(await messages({ modelId: "no-such-model" })).toEqual([]);

    const all = (await eventHistory(f.t.db, {}, f.bus)).events;
    const byMessage = Object.fromEntries(all.map((e) => [e.message, e]));
    expect(byMessage["alpha: unloaded after its idle time"]).toMatchObject({ type: "event", kind: "state", state: "stopped", modelId: f.alpha, modelName: "alpha", hostId: f.mac.id, hostName: "mac", data: { cause: "idle" } });
    expect(byMessage["gamma: start failed"]).toMatchObject({ modelName: "gamma", hostName: "linux" });
    expect(byMessage["host linux: link disconnected"]).toMatchObject({ modelId: null, modelName: null, hostName: "linux", state: "disconnected" });
    expect(byMessage["start all: 3 models"]).toMatchObject({ modelId: null, modelName: null, hostId: null, hostName: null });
    expect(Date.parse(byMessage["alpha: starting"]!.at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("a deleted model's events are gone with it; host and fleet events stay, a deleted host's without its name", async () => {
    const f = await setup();
    await f.bus.append({ kind: "state", modelId: f.gamma, hostId: f.linux.id, state: "ready", message: "gamma: ready" });
    await f.bus.append({ kind: "host", hostId: f.linux.id, state: "connected", message: "host linux: link connected" });
    await f.bus.append({ kind: "state", modelId: f.alpha, hostId: f.mac.id, state: "ready", message: "alpha: ready" });
    await f.bus.append({ kind: "action", message: "stop all" });

    await f.t.db.model.delete({ where: { id: f.gamma } });
    expect((await eventHistory(f.t.db, {}, f.bus)).events.map((e) => e.message)).toEqual(["stop all", "alpha: ready", "host linux: link connected"]);
    expect((await eventHistory(f.t.db, { modelId: f.gamma }, f.bus)).events).toEqual([]);

    await f.t.db.host.delete({ where: { id: f.linux.id } });
    const left = (await eventHistory(f.t.db, { hostId: f.linux.id }, f.bus)).events;
    expect(left).toHaveLength(1);
    expect(left[0]).toMatchObject({ message: "host linux: link connected", hostId: f.linux.id, hostName: null, modelName: null });
  });

  it("bad input is BAD_REQUEST naming the field", async () => {
    const f = await setup();
    expect(await badRequest(eventHistory(f.t.db, { limit: 501 }, f.bus))).toContain("limit: must be at most 500");
    expect(await badRequest(eventHistory(f.t.db, { limit: 0 }, f.bus))).toContain("limit: must be at least 1");
    expect(await badRequest(eventHistory(f.t.db, { cursor: 0 }, f.bus))).toContain("cursor: must be an event id");
    expect(await badRequest(eventHistory(f.t.db, { cursor: 1.5 }, f.bus))).toContain("cursor: must be a whole number");
    expect(await badRequest(eventHistory(f.t.db, { kind: "log" as "state" }, f.bus))).toContain("kind: must be one of state, action, error, host");
    expect(await badRequest(eventHistory(f.t.db, { direction: "backward" as "forward" }, f.bus))).toContain("direction");
    expect(await badRequest(eventHistory(f.t.db, { modelId: "" }, f.bus))).toContain("modelId: must not be empty");
    expect(await badRequest(eventHistory(f.t.db, { before: 3 } as EventHistoryInput, f.bus))).toContain("before");
  });

  it("subscribing from liveFrom hands over to the live stream: with events written during the read, each arrives once, on the page or live", async () => {
    const f = await setup();
    for (let i = 0; i < 20; i++) await f.bus.append({ kind: "state", modelId: f.alpha, state: "ready", message: `before ${i}` });
    // Appends race the read: some commit before it, some during, some after.
    const racing = Array.from({ length: 40 }, (_, i) => f.bus.append({ kind: "action", modelId: i % 2 ? f.beta : null, message: `during ${i}` }));
    const page = await eventHistory(f.t.db, { limit: 500 }, f.bus);
    let afterId = "";
    const live = collect(f.bus.subscribe({ lastEventId: page.liveFrom }), (item) => item.id === afterId);
    const written = await Promise.all(racing);
    afterId = String((await f.bus.append({ kind: "action", message: "after" })).id);
    const got = await live;

    const seen = [...page.events.map((e) => e.id), ...got.map((i) => Number(i.id))];
    const every = (await f.t.db.event.findMany({ select: { id: true } })).map((e) => e.id);
    expect([...seen].sort((a, b) => a - b)).toEqual(every.sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
    expect(written.every((e) => seen.includes(e.id))).toBe(true);
  });

  it("an event committed just after the page's rows were read arrives live", async () => {
    const f = await setup();
    await f.bus.append({ kind: "action", message: "on the page" });
    // The same database, but an event is committed right after each read of events: the moment a
    // liveFrom read after the rows would skip.
    let committed: number | null = null;
    const events = new Proxy(f.t.db.event, {
      get: (target, prop) =>
        prop === "findMany"
          ? async (args: Parameters<typeof target.findMany>[0]) => {
              const rows = await target.findMany(args);
              committed = (await f.bus.append({ kind: "action", message: "between" })).id;
              return rows;
            }
          : Reflect.get(target, prop, target),
    });
    const db = new Proxy(f.t.db, { get: (target, prop) => (prop === "event" ? events : Reflect.get(target, prop, target)) });
    const page = await eventHistory(db, {}, f.bus);
    expect(page.events.map((e) => e.message)).toEqual(["on the page"]);
    const got = await collect(f.bus.subscribe({ lastEventId: page.liveFrom }), (item) => item.id === String(committed));
    expect(got.map((i) => (i.event.type === "event" ? i.event.message : i.id))).toEqual(["between"]);
  });
});

/** Reads a subscription (starting now) until an item matches `until`, with a deadline. */
async function collect(iter: AsyncIterable<StreamItem>, until: (item: StreamItem) => boolean, timeoutMs = 5000): Promise<StreamItem[]> {
  const it = iter[Symbol.asyncIterator]();
  const out: StreamItem[] = [];
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const left = deadline - Date.now();
      const r = left > 0 ? await Promise.race([it.next(), new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), left))]) : "timeout";
      if (r === "timeout") throw new Error(`no matching item before the deadline; got ${JSON.stringify(out.map((i) => i.id))}`);
      if (r.done) throw new Error("the stream ended");
      out.push(r.value);
      if (until(r.value)) return out;
    }
  } finally {
    void it.return?.();
  }
}
