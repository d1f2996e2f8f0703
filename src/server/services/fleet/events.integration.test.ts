import { afterEach, describe, expect, it } from "vitest";
import { createEventBus, parseStreamId, type EventBus, type StreamItem } from "./events";
import { upsertStateSql } from "./state-sql";
import { testDb, testLogger, type TestDb } from "./testing/db";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(options: Partial<Parameters<typeof createEventBus>[0]> = {}): Promise<{ t: TestDb; bus: EventBus; modelId: string; otherId: string; hostId: string }> {
  const t = testDb("synapse-events-");
  cleanups.push(() => t.cleanup());
  const host = await t.db.host.create({ data: { name: "local" } });
  const a = await t.db.model.create({ data: { name: "alpha", hostId: host.id, filePath: "/m/a.gguf", port: 9001 } });
  const b = await t.db.model.create({ data: { name: "beta", hostId: host.id, filePath: "/m/b.gguf", port: 9002 } });
  const bus = await createEventBus({ db: t.db, log: testLogger(), ...options });
  cleanups.push(() => bus.close());
  return { t, bus, modelId: a.id, otherId: b.id, hostId: host.id };
}

/** Reads `n` items (or until `until` matches) from a subscription, with a deadline. */
async function take(iter: AsyncIterable<StreamItem>, n: number, timeoutMs = 5000): Promise<StreamItem[]> {
  const out: StreamItem[] = [];
  const it = iter[Symbol.asyncIterator]();
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`got ${out.length} of ${n} items: ${JSON.stringify(out.map((i) => i.id))}`);
    const r = await Promise.race([it.next(), new Promise<"timeout">((r) => setTimeout(() => r("timeout"), left))]);
    if (r === "timeout") throw new Error(`got ${out.length} of ${n} items before the deadline: ${JSON.stringify(out.map((i) => i.id))}`);
    if (r.done) break;
    out.push(r.value);
  }
  await it.return?.();
  return out;
}

describe("event bus", () => {
  it("persists events with increasing ids and publishes them live", async () => {
    const { t, bus, modelId } = await setup();
    const controller = new AbortController();
    const live = take(bus.subscribe({ signal: controller.signal }), 2);
    await new Promise((r) => setTimeout(r, 20));
    const e1 = await bus.append({ kind: "state", modelId, state: "starting", message: "starting", data: { pid: 1 } });
    const e2 = await bus.append({ kind: "action", modelId, message: "start requested" });
    expect(e2.id).toBeGreaterThan(e1.id);
    const got = await live;
    expect(got.map((g) => g.id)).toEqual([String(e1.id), String(e2.id)]);
    expect(got[0]!.event).toMatchObject({ type: "event", kind: "state", state: "starting", data: { pid: 1 }, modelId });
    expect(await t.db.event.count()).toBe(2);
    expect(bus.lastEventId()).toBe(String(e2.id));
  });

  it("appends made together are written together, in order, each with the state it reports", async () => {
    const { t, bus, modelId, otherId } = await setup();
    for (const id of [modelId, otherId]) await t.db.serverState.create({ data: { modelId: id } });
    const controller = new AbortController();
    const live = take(bus.subscribe({ signal: controller.signal }), 6);
    await new Promise((r) => setTimeout(r, 20));
    const appended = await Promise.all(
      Array.from({ length: 6 }, (_, i) => {
        const id = i % 2 ? otherId : modelId;
        return bus.append(
          { kind: "state", modelId: id, state: "starting", message: `s${i}`, data: { pid: 100 + i } },
          { with: () => [upsertStateSql(id, { observed: "starting", pid: 100 + i })] },
        );
      }),
    );
    expect(appended.map((e) => e.message)).toEqual(["s0", "s1", "s2", "s3", "s4", "s5"]);
    const ids = appended.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect((await live).map((i) => i.id)).toEqual(ids.map(String));
    const states = await t.db.serverState.findMany({ orderBy: { modelId: "asc" } });
    expect(Object.fromEntries(states.map((s) => [s.modelId, s.pid]))).toEqual({ [modelId]: 104, [otherId]: 105 });
  });

  it("one append that cannot be written fails alone: the others in its batch are written, and its own writes are rolled back", async () => {
    const { t, bus, modelId } = await setup();
    await t.db.serverState.create({ data: { modelId } });
    const published = take(bus.subscribe({}), 2);
    await new Promise((r) => setTimeout(r, 20));
    const results = await Promise.allSettled([
      bus.append({ kind: "action", modelId, message: "before" }),
      // The event names a model that does not exist (deleted meanwhile): its row breaks the foreign key.
      bus.append(
        { kind: "state", modelId: "no-such-model", state: "ready", message: "orphan" },
        { with: () => [upsertStateSql(modelId, { observed: "ready", pid: 4242 })] },
      ),
      bus.append({ kind: "action", modelId, message: "after" }),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((await published).map((i) => (i.event.type === "event" ? i.event.message : ""))).toEqual(["before", "after"]);
    expect((await t.db.event.findMany({ orderBy: { id: "asc" } })).map((e) => e.message)).toEqual(["before", "after"]);
    // The state write that came with the failed event did not land.
    expect(await t.db.serverState.findUnique({ where: { modelId } })).toMatchObject({ observed: "stopped", pid: null });
  });

  it("log lines carry the last event id and a sequence, are not persisted, and are only sent to subscribers that ask", async () => {
    const { t, bus, modelId } = await setup();
    const withLogs = take(bus.subscribe({ logs: true }), 3);
    const withoutLogs = take(bus.subscribe({}), 1);
    await new Promise((r) => setTimeout(r, 20));
    const e1 = await bus.append({ kind: "state", modelId, state: "starting", message: "starting" });
    bus.logLine(modelId, null, "line one");
    bus.logLine(modelId, null, "line two");
    const a = await withLogs;
    expect(a.map((i) => i.id)).toEqual([`${e1.id}`, `${e1.id}.1`, `${e1.id}.2`]);
    expect(a[1]!.event).toMatchObject({ type: "log", line: "line one", modelId });
    expect((await withoutLogs).map((i) => i.id)).toEqual([`${e1.id}`]);
    expect(await t.db.event.count()).toBe(1);
    expect(bus.recentLogs(modelId).map((i) => (i.event.type === "log" ? i.event.line : ""))).toEqual(["line one", "line two"]);
  });

  it("resumes after a lastEventId: replays persisted events and ring lines after it, then goes live with no gap and no duplicate", async () => {
    const { bus, modelId, otherId } = await setup();
    const seen: string[] = [];
    const first = bus.subscribe({ logs: true });
    const firstIt = first[Symbol.asyncIterator]();
    // The generator registers on its first next(), synchronously.
    const firstNext = firstIt.next();
    // History: events and log lines interleaved.
    await bus.append({ kind: "state", modelId, state: "starting", message: "s1" });
    bus.logLine(modelId, null, "l1");
    await bus.append({ kind: "state", modelId, state: "ready", message: "s2" });
    bus.logLine(modelId, null, "l2");
    bus.logLine(otherId, null, "other-l1");
    await bus.append({ kind: "state", modelId: otherId, state: "ready", message: "s3" });
    // The first client reads 3 items, then "disconnects".
    seen.push((await firstNext).value!.id);
    for (let i = 0; i < 2; i++) seen.push((await firstIt.next()).value!.id);
    await firstIt.return?.();
    const resumeFrom = seen[seen.length - 1]!;
    expect(resumeFrom).toMatch(/^\d+$/); // the 3rd item is the event s2

    // Resume while more is being produced concurrently.
    const resumed = bus.subscribe({ lastEventId: resumeFrom, logs: true });
    const producer = (async () => {
      for (let i = 0; i < 20; i++) {
        bus.logLine(modelId, null, `live-l${i}`);
        await bus.append({ kind: "action", modelId, message: `live-e${i}` });
      }
    })();
    const rest = await take(resumed, 3 + 40);
    await producer;
    const ids = rest.map((i) => i.id);
    // Strictly increasing: nothing twice, nothing out of order.
    const cursors = ids.map(parseStreamId);
    for (let i = 1; i < cursors.length; i++) {
      const [a, b] = [cursors[i - 1]!, cursors[i]!];
      expect(a.db < b.db || (a.db === b.db && a.seq < b.seq), `${ids[i - 1]} < ${ids[i]}`).toBe(true);
    }
    const texts = rest.map((i) => (i.event.type === "log" ? i.event.line : i.event.message));
    expect(texts.slice(0, 3)).toEqual(["l2", "other-l1", "s3"]);
    expect(texts.slice(3)).toEqual(Array.from({ length: 20 }, (_, i) => [`live-l${i}`, `live-e${i}`]).flat());
  });

  it("resuming from a log line's id gives the lines after it and the next events", async () => {
    const { bus, modelId } = await setup();
    const e = await bus.append({ kind: "state", modelId, state: "ready", message: "ready" });
    bus.logLine(modelId, null, "a");
    bus.logLine(modelId, null, "b");
    bus.logLine(modelId, null, "c");
    await bus.append({ kind: "state", modelId, state: "stopping", message: "stopping" });
    const got = await take(bus.subscribe({ lastEventId: `${e.id}.1`, logs: true }), 3);
    expect(got.map((i) => (i.event.type === "log" ? i.event.line : i.event.state))).toEqual(["b", "c", "stopping"]);
  });

  it("filters by model; host-wide events always pass", async () => {
    const { bus, modelId, otherId, hostId } = await setup();
    const got = take(bus.subscribe({ modelIds: [modelId], logs: true }), 3);
    await new Promise((r) => setTimeout(r, 20));
    await bus.append({ kind: "state", modelId: otherId, state: "ready", message: "other" });
    bus.logLine(otherId, null, "other line");
    await bus.append({ kind: "host", hostId, state: "connected", message: "link up" });
    bus.logLine(modelId, null, "mine");
    await bus.append({ kind: "state", modelId, state: "ready", message: "mine" });
    expect((await got).map((i) => (i.event.type === "log" ? i.event.line : i.event.message))).toEqual(["link up", "mine", "mine"]);
  });

  it("a slow subscriber loses its oldest log lines, never events", async () => {
    const { bus, modelId } = await setup({ queueSize: 10 });
    const controller = new AbortController();
    const sub = bus.subscribe({ logs: true, signal: controller.signal });
    const it = sub[Symbol.asyncIterator]();
    const firstP = it.next(); // registers the subscriber
    await bus.append({ kind: "state", modelId, state: "starting", message: "e0" });
    await firstP;
    for (let i = 0; i < 30; i++) bus.logLine(modelId, null, `l${i}`);
    await bus.append({ kind: "state", modelId, state: "ready", message: "e1" });
    for (let i = 30; i < 40; i++) bus.logLine(modelId, null, `l${i}`);
    const rest: string[] = [];
    for (;;) {
      const r = await Promise.race([it.next(), new Promise<null>((res) => setTimeout(() => res(null), 200))]);
      if (!r || r.done) break;
      rest.push(r.value.event.type === "log" ? r.value.event.line : r.value.event.message);
    }
    // A pending next() only ends through the signal (return() would queue behind it).
    controller.abort();
    await it.return?.();
    expect(rest).toContain("e1");
    expect(rest.length).toBeLessThanOrEqual(10);
    expect(rest[rest.length - 1]).toBe("l39");
  });

  it("honours the abort signal and close()", async () => {
    const { bus } = await setup();
    const controller = new AbortController();
    const it = bus.subscribe({ signal: controller.signal })[Symbol.asyncIterator]();
    const next = it.next();
    setTimeout(() => controller.abort(), 20);
    expect(await next).toEqual({ done: true, value: undefined });

    const it2 = bus.subscribe({})[Symbol.asyncIterator]();
    const next2 = it2.next();
    setTimeout(() => void bus.close(), 20);
    expect((await next2).done).toBe(true);
  });

  it("rejects a malformed lastEventId with a field error", async () => {
    const { bus } = await setup();
    const it = bus.subscribe({ lastEventId: "abc" })[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "lastEventId" }] });
  });

  it("continues the id sequence of an existing database", async () => {
    const { t, bus, modelId } = await setup();
    const e = await bus.append({ kind: "action", modelId, message: "x" });
    await bus.close();
    const bus2 = await createEventBus({ db: t.db, log: testLogger() });
    cleanups.push(() => bus2.close());
    expect(bus2.lastEventId()).toBe(String(e.id));
    const sub = take(bus2.subscribe({ logs: true }), 1);
    await new Promise((r) => setTimeout(r, 20));
    bus2.logLine(modelId, null, "after restart");
    expect((await sub)[0]!.id).toBe(`${e.id}.1`);
  });

  it("bounds history: a far-behind resume replays only the newest events, and old rows are pruned at start", async () => {
    const { t, bus, modelId } = await setup({ maxReplay: 3 });
    const ids: number[] = [];
    for (let i = 0; i < 8; i++) ids.push((await bus.append({ kind: "action", modelId, message: `e${i}` })).id);
    const replayed = await take(bus.subscribe({ lastEventId: "0" }), 3, 2000);
    expect(replayed.map((i) => i.id)).toEqual(ids.slice(-3).map(String));
    await bus.close();
    const bus2 = await createEventBus({ db: t.db, log: testLogger(), keepEvents: 5 });
    cleanups.push(() => bus2.close());
    expect((await t.db.event.findMany({ select: { id: true }, orderBy: { id: "asc" } })).map((e) => e.id)).toEqual(ids.slice(-5));
    expect(bus2.lastEventId()).toBe(String(ids.at(-1)));
  });
});
