/**
 * Load policy, on-demand start, idle unload and queueing, with the real
 * llama-server and tiny models, driven by the official `openai` client.
 */
import { writeFile } from "node:fs/promises";
import OpenAI from "openai";
import type { ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../../host-agent/src/gguf/tiny-model";
import { waitFor } from "~/server/services/fleet/testing/fixture";
import { updateModel } from "~/server/services/registry/models";
import { displayState } from "~/shared/display-state";
import { createFleetAdapter } from "./fleet-adapter";
import { createIdleUnloader } from "./idle-unload";
import { gatewayFixture, type GatewayFixture, chat } from "./testing/gateway-fixture";

function stream(model: string, extra: Record<string, unknown> = {}): ChatCompletionCreateParamsStreaming {
  return { ...chat(model, extra), stream: true } as unknown as ChatCompletionCreateParamsStreaming;
}

async function state(g: GatewayFixture, name: string): Promise<string> {
  return (await g.f.fleet.status()).find((s) => s.name === name)!.state;
}

describe("gateway: on-demand models, idle unload, queueing", () => {
  let g: GatewayFixture;

  beforeAll(async () => {
    g = await gatewayFixture({ gateway: { idleSweepMs: 100 } });
  });
  afterAll(async () => {
    await g?.dispose();
  });

  it("START ALL ENABLED skips on-demand models; the first request starts one and is answered", async () => {
    await g.addModel("always-on");
    await g.addModel("lazy", { loadPolicy: "on-demand" });
    const started = await g.f.fleet.startAll();
    expect(started.map((r) => r.name)).toEqual(["always-on"]);
    expect(await state(g, "lazy")).toBe("stopped");
    // Its event names the one it left alone, on purpose.
    const event = await g.f.t.db.event.findFirstOrThrow({ where: { kind: "action", message: { startsWith: "start all" } }, orderBy: { id: "desc" } });
    expect(event.message).toBe("start all: 1 enabled model(s) with load policy always; 1 on demand, left for their first request");
    expect(JSON.parse(event.data!)).toMatchObject({ models: ["always-on"], onDemand: ["lazy"] });
    const r = await g.client.chat.completions.create(chat("lazy"));
    expect(r.choices[0]?.message.content).toMatch(/^[a-z]+$/);
    expect(await state(g, "lazy")).toBe("ready");
    // Once a request loaded it, a start-all's event no longer says it waits for its first request.
    await g.f.fleet.startAll();
    // Events are written in batches: wait for the second start-all's.
    const again = await waitFor("the second start-all's event", async () => {
      const all = await g.f.t.db.event.findMany({ where: { kind: "action", message: { startsWith: "start all" } }, orderBy: { id: "desc" } });
      return all.length >= 2 ? all[0]! : null;
    }, 5000, 20);
    expect(again.message).toBe("start all: 1 enabled model(s) with load policy always; 1 on demand: 1 already loaded (left running)");
    expect(JSON.parse(again.data!)).toMatchObject({ onDemand: ["lazy"], onDemandLoaded: ["lazy"] });
  });

  it("/v1/models names an unloaded on-demand model idle, as synapse status and the dashboard do; its server's state is stopped", async () => {
    await g.addModel("listed-lazy", { loadPolicy: "on-demand" });
    await g.addModel("listed-parked");
    type Listed = { id: string; state: string; server_state: string };
    // Rows written straight to the database make no fleet event: listed once the snapshot's age check has read them.
    const listed = (name: string) => waitFor(`${name} in /v1/models`, async () => (await g.client.models.list()).data.find((x) => x.id === name) as unknown as Listed | undefined, 5000, 50);
    const statusWord = async (name: string) => {
      const s = (await g.f.fleet.status()).find((x) => x.name === name)!;
      return displayState(s.state, s.desired, s.loadPolicy).key;
    };
    expect(await statusWord("listed-lazy")).toBe("idle");
    expect(await listed("listed-lazy")).toMatchObject({ state: "idle", server_state: "stopped" });
    expect(await g.client.models.retrieve("listed-lazy")).toMatchObject({ state: "idle", server_state: "stopped" });
    // An always model that is stopped is stopped, there as here.
    expect([await statusWord("listed-parked"), (await listed("listed-parked")).state]).toEqual(["stopped", "stopped"]);
    // Loaded by a request: ready, in both fields.
    expect((await g.client.chat.completions.create(chat("listed-lazy"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    expect(await listed("listed-lazy")).toMatchObject({ state: "ready", server_state: "ready" });
  });

  it("/props and /slots neither load an on-demand model nor count as its use (a monitor must not keep it loaded)", async () => {
    const m = await g.addModel("looked-at", { loadPolicy: "on-demand", idleTimeoutMs: 600_000 });
    for (const path of ["/slots", "/props"]) {
      const r = await fetch(`${g.url}${path}?model=looked-at`);
      expect([r.status, ((await r.json()) as { error: { code: string } }).error.code, r.headers.get("x-should-retry")]).toEqual([409, "model_not_loaded", "false"]);
    }
    expect(await state(g, "looked-at")).toBe("stopped");
    // Loaded by a completion; then looks at it leave its last use and its idle clock as they were.
    expect((await g.client.chat.completions.create(chat("looked-at"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    const before = await waitFor("the idle clock to run", async () => {
      const u = g.adapter.usage(m.id);
      return u.idleUnloadAt !== null ? u : null;
    }, 5000, 10);
    expect(before.lastUsedAt).not.toBeNull();
    // Its idle clock runs, shown in Unix seconds as OpenAI's `created` is.
    const listed = (await g.client.models.list()).data.find((x) => x.id === "looked-at") as unknown as { idle_unload_at: number; created: number };
    expect(listed.idle_unload_at).toBe(Math.round(before.idleUnloadAt! / 1000));
    expect(listed.idle_unload_at).toBeGreaterThan(listed.created);
    expect(listed.idle_unload_at).toBeLessThan(Date.now() / 1000 + 86_400);
    for (const path of ["/slots", "/props"]) expect((await fetch(`${g.url}${path}?model=looked-at`)).status).toBe(200);
    expect(g.adapter.usage(m.id)).toEqual(before);
  });

  it("an on-demand model disabled a moment ago (the gateway's snapshot still says enabled) is refused 409 and not started", async () => {
    const m = await g.addModel("lazy-off", { loadPolicy: "on-demand" });
    // The gateway has it in its snapshot, enabled.
    expect((await g.client.chat.completions.create(chat("lazy-off"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    await g.f.fleet.stop(m.id);
    await waitFor("the stop", async () => (await state(g, "lazy-off")) === "stopped", 10_000, 50);
    await g.client.models.list(); // the stop's events are read into the snapshot
    // Disabled with no fleet event (the row saved as the model form does): only a read of the registry sees it.
    await g.f.t.db.model.update({ where: { id: m.id }, data: { enabled: false } });
    const err = await g.client.chat.completions.create(chat("lazy-off")).then(
      () => null,
      (e: unknown) => e as { status?: number; code?: string },
    );
    expect(err?.status).toBe(409);
    expect(err?.code).toBe("model_disabled");
    expect(await state(g, "lazy-off")).toBe("stopped");
    // The first request's start only, and its event says a request started it (not a user's start).
    const starts = await g.f.t.db.event.findMany({ where: { modelId: m.id, kind: "action", message: { contains: "start" }, NOT: { message: { contains: "memory check" } } }, select: { message: true, data: true } });
    expect(starts.map((e) => e.message)).toEqual(["lazy-off: started on demand (a request named it)"]);
    expect(JSON.parse(starts[0]!.data!)).toMatchObject({ trigger: "request" });
  });

  it("a streamed chat completion to a stopped on-demand model: started, then streamed", async () => {
    await g.addModel("lazy-stream", { loadPolicy: "on-demand" });
    const s = await g.client.chat.completions.create(stream("lazy-stream", { max_tokens: 10 }));
    let text = "";
    for await (const chunk of s) text += chunk.choices[0]?.delta?.content ?? "";
    expect(text).toMatch(/^[a-z]+$/);
  });

  it("requests that arrive while it loads queue behind the one start and are all answered", async () => {
    await g.addModel("lazy-many", { loadPolicy: "on-demand" });
    const answers = await Promise.all([0, 1, 2, 3].map(() => g.client.chat.completions.create(chat("lazy-many"))));
    for (const a of answers) expect(a.choices[0]?.message.content).toMatch(/^[a-z]+$/);
    const starts = await g.f.t.db.event.count({ where: { model: { name: "lazy-many" }, kind: "state", state: "starting" } });
    expect(starts).toBe(1);
  });

  it("a start that fails answers every waiting request 503 with Retry-After and the reason", async () => {
    const broken = await g.addModel("broken", { loadPolicy: "on-demand" });
    await writeFile(broken.filePath, Buffer.from("GGUF but not really a model"));
    const results = await Promise.allSettled([0, 1, 2].map(() => g.client.chat.completions.create(chat("broken"))));
    for (const r of results) {
      expect(r.status).toBe("rejected");
      const err = (r as PromiseRejectedResult).reason as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(err.status).toBe(503);
      expect(Number(err.headers?.get("retry-after"))).toBeGreaterThan(0);
      expect(err.message).toMatch(/broken/);
    }
    // No restart is pending (a file that is not a model): a person must fix it, and the clients are told not to
    // retry. The official client at its default retries (2) sends the request once.
    let fetches = 0;
    const counting = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: "loopback", fetch: (url: RequestInfo | URL, init?: RequestInit) => (fetches++, fetch(url, init)) });
    const again = await counting.chat.completions.create(chat("broken")).then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect([again?.status, again?.code, again?.headers?.get("x-should-retry")]).toEqual([503, "model_failed", "false"]);
    expect(fetches).toBe(1);
  });

  it("a failed on-demand model stays failed while its settings do not change, and the next request after a saved fix starts it", async () => {
    // A setting llama-server refuses while loading (a value it refuses at once, like --pooling bogus, is refused
    // at save): a quantized V cache with flash attention off.
    const m = await g.addModel("fixable", { loadPolicy: "on-demand", flashAttn: "off", extraFlags: JSON.stringify([{ flag: "--cache-type-v", value: "q4_0" }]) });
    const deps = { appPort: 1, events: g.f.events };
    /** How many starts requests made of it (each a spawn of llama-server). */
    const starts = () => g.f.t.db.event.count({ where: { modelId: m.id, kind: "action", message: { contains: "started on demand" } } });
    const refused = () => g.client.chat.completions.create(chat("fixable")).then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    const first = await refused();
    expect(first?.status).toBe(503);
    expect(first?.message).toMatch(/quantized V cache/);
    expect(await waitFor("the first start's event", async () => (await starts()) === 1, 5000, 20)).toBe(true);
    // Not changed: the same 503 without a start (no retry loop on a broken model), saying how to get a retry.
    const same = await refused();
    expect([same?.status, same?.code, same?.headers?.get("x-should-retry")]).toEqual([503, "model_failed", "false"]);
    expect(same?.message).toContain("fix its settings (a saved change lets the next request try again) or start it from the dashboard");
    // A saved change that leaves its spec as it was (the idle time is the gateway's, not llama-server's): still 503.
    await updateModel(g.f.t.db, { id: m.id, idleTimeoutMs: 120_000 }, deps);
    expect((await refused())?.code).toBe("model_failed");
    // Another bad value: one new try, which fails; the request after it is refused without a start again.
    await updateModel(g.f.t.db, { id: m.id, extraFlags: [{ flag: "--cache-type-v", value: "q8_0" }] }, deps);
    const tried = await refused();
    expect([tried?.status, tried?.message.includes("quantized V cache"), await starts()]).toEqual([503, true, 2]);
    expect((await refused())?.code).toBe("model_failed");
    expect(await starts()).toBe(2);
    // The fix: the bad flag removed. The next request is a cold start, answered.
    await updateModel(g.f.t.db, { id: m.id, extraFlags: [] }, deps);
    const r = await g.client.chat.completions.create(chat("fixable"));
    expect(r.choices[0]?.message.content).toMatch(/^[a-z]+$/);
    expect(await state(g, "fixable")).toBe("ready");
    expect(await starts()).toBe(3);
  });

  it("20 concurrent requests to a 1-slot model with a queue of 8: 9 served in arrival order, 11 refused 429 with Retry-After", async () => {
    const m = await g.addModel("one-slot", { ctxSize: 16384, parallel: 1, queueLimit: 8 });
    await writeTinyModel(m.filePath, { contextLength: 16384 });
    expect((await g.f.fleet.start(m.id)).state).toBe("ready");
    const served: number[] = [];
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      // Arrival in index order, all while the first is answered: each is sent once the ones before it are
      // in (in flight at the gateway); from the 10th on, the 9 admitted ones stay in flight.
      await waitFor(`request ${i} to be in flight`, async () => g.adapter.usage(m.id).inFlight >= Math.min(i, 9), 10_000, 1);
      sends.push(
        // The first holds the slot until all 20 have arrived, however slowly a loaded machine sends them
        // (with 1500 tokens it could end before the 10th arrived, which then got its place in the queue).
        g.client.chat.completions.create(chat("one-slot", { max_tokens: i === 0 ? 12_000 : 200, ignore_eos: true })).then((r) => {
          served.push(i);
          return r;
        }),
      );
    }
    const results = await Promise.allSettled(sends);
    const refused = results.flatMap((r, i) => (r.status === "rejected" ? [{ i, err: r.reason as InstanceType<typeof OpenAI.APIError> }] : []));
    expect(served).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(refused.map((x) => x.i)).toEqual([9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    for (const { err } of refused) {
      expect(err.status).toBe(429);
      expect(Number(err.headers?.get("retry-after"))).toBeGreaterThan(0);
    }
  });

  it("/slots and /props of a model whose one place is taken answer at once: they use no slot and do not queue (a completion gets 429)", async () => {
    const m = await g.addModel("watched", { ctxSize: 16384, parallel: 1, queueLimit: 0 });
    await writeTinyModel(m.filePath, { contextLength: 16384 });
    expect((await g.f.fleet.start(m.id)).state).toBe("ready");
    const abort = new AbortController();
    const s = await g.client.chat.completions.create(stream("watched", { max_tokens: 12_000, ignore_eos: true }), { signal: abort.signal });
    const it = s[Symbol.asyncIterator]();
    await it.next(); // streaming: the one place is held
    const busy = await g.client.chat.completions.create(chat("watched")).then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(busy?.status).toBe(429);
    const slots = await fetch(`${g.url}/slots?model=watched`);
    expect(slots.status).toBe(200);
    const [slot] = (await slots.json()) as { is_processing: boolean }[];
    // Answered while the stream still runs: the slot shows its work.
    expect(slot?.is_processing).toBe(true);
    expect((await fetch(`${g.url}/props?model=watched`)).status).toBe(200);
    abort.abort();
    await it.return?.();
  });

  it("idle unload: an on-demand model stops after its idle time with cause idle, and not while a long stream runs", async () => {
    const m = await g.addModel("idle", { loadPolicy: "on-demand", idleTimeoutMs: 1000, ctxSize: 8192 });
    await writeTinyModel(m.filePath, { contextLength: 8192 });
    // A stream several times longer than the idle time: the model stays loaded all along. (4096 tokens took
    // 1.45 s through this gateway in CI: too close to the idle time; 8192 leave room.)
    const t0 = Date.now();
    const s = await g.client.chat.completions.create(stream("idle", { max_tokens: 7800, ignore_eos: true }));
    let chunks = 0;
    const states = new Set<string>();
    // What the dashboard shows meanwhile (servers.status is the fleet's status view): one in flight and no
    // countdown (the client may still read buffered chunks after the gateway's end: later samples may show 0).
    const shown: [number, string | null][] = [];
    for await (const _ of s) {
      if (++chunks % 100 === 0) {
        const row = (await g.f.fleet.status()).find((x) => x.name === "idle")!;
        states.add(row.state);
        shown.push([row.inFlight, row.idleUnloadAt]);
      }
    }
    expect(shown[0]).toEqual([1, null]);
    expect(shown.filter(([n, at]) => n > 0 && at !== null)).toEqual([]);
    expect(chunks).toBeGreaterThan(6000);
    expect(Date.now() - t0, "the stream must outlast the idle time for this test to mean anything").toBeGreaterThan(1500);
    // Loaded all along (a busy tiny server may answer /health late: unhealthy is still loaded).
    expect([...states].filter((x) => x !== "ready" && x !== "unhealthy")).toEqual([]);
    // After it: none in flight, last used at its end, and the countdown from there.
    await waitFor("the idle countdown in the status", async () => (await g.f.fleet.status()).find((x) => x.name === "idle")!.idleUnloadAt !== null, 5000, 20);
    const counting = (await g.f.fleet.status()).find((x) => x.name === "idle")!;
    expect(counting.inFlight).toBe(0);
    expect(Date.parse(counting.idleUnloadAt!) - Date.parse(counting.lastUsedAt!)).toBe(1000);
    expect(Date.parse(counting.lastUsedAt!)).toBeGreaterThan(t0);
    await waitFor("the idle unload", async () => (await state(g, "idle")) === "stopped", 10_000, 50);
    const unload = await g.f.t.db.event.findFirst({ where: { modelId: m.id, kind: "action" }, orderBy: { id: "desc" } });
    expect(unload?.message).toContain("unloaded after its idle time");
    // Not before its idle time had passed since its last use. The clock is the gateway's end of the stream
    // (lastUsedAt): the client may read buffered chunks well after it on a loaded machine, so its own end is not.
    expect(unload!.at.getTime()).toBeGreaterThanOrEqual(Date.parse(counting.idleUnloadAt!));
    expect(JSON.parse(unload?.data ?? "{}")).toMatchObject({ cause: "idle" });
    // Idle is not stopped: the next request starts it again.
    const again = await g.client.chat.completions.create(chat("idle"));
    expect(again.choices[0]?.message.content).toMatch(/^[a-z]+$/);
  });

  // Last: it replaces the fixture's fleet (the gateway above stays on the old one).
  it("after an app restart, a running on-demand model is re-adopted (same pid) and its idle clock starts again", async () => {
    const m = await g.addModel("adopted", { loadPolicy: "on-demand", idleTimeoutMs: 1500 });
    await g.client.chat.completions.create(chat("adopted"));
    const before = (await g.f.fleet.status()).find((s) => s.name === "adopted")!;
    expect(before.state).toBe("ready");
    // The app goes away and comes back: new fleet, adapter and unloader on the same database; servers left running.
    await g.f.restart({ stopServers: false });
    await g.f.fleet.adopt({ timeoutMs: 10_000 });
    const adoptedAt = Date.now();
    const adapter = createFleetAdapter({ db: g.f.t.db, fleet: g.f.fleet, events: g.f.events });
    const unloader = createIdleUnloader({ fleet: adapter, sweepMs: 100 });
    try {
      const after = (await g.f.fleet.status()).find((s) => s.name === "adopted")!;
      expect([after.state, after.pid]).toEqual(["ready", before.pid]);
      const t0 = Date.now();
      // The new app knows no request of it: the dashboard shows its countdown from re-adoption.
      expect(before.lastUsedAt).not.toBeNull();
      await waitFor("the re-adopted model's idle countdown", async () => (await g.f.fleet.status()).find((s) => s.name === "adopted")!.idleUnloadAt !== null, 5000, 20);
      const counting = (await g.f.fleet.status()).find((s) => s.name === "adopted")!;
      expect([counting.inFlight, counting.lastUsedAt]).toEqual([0, null]);
      expect(Date.parse(counting.idleUnloadAt!)).toBeGreaterThanOrEqual(adoptedAt + 1500);
      await waitFor("the re-adopted model's idle unload", async () => (await g.f.fleet.status()).find((s) => s.name === "adopted")!.state === "stopped", 15_000, 50);
      // Its clock started at re-adoption: not at once, and not never.
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1200);
      const unload = await g.f.t.db.event.findFirst({ where: { modelId: m.id, kind: "action" }, orderBy: { id: "desc" } });
      expect(JSON.parse(unload?.data ?? "{}")).toMatchObject({ cause: "idle" });
    } finally {
      unloader.close();
      adapter.close();
    }
  });

});

describe("gateway: an on-demand model's idle deadline follows its requests at once", () => {
  let g: GatewayFixture;

  beforeAll(async () => {
    // A periodic sweep far away (120 s): only the requests themselves can move the deadline within the test's
    // 10 s waits (generous for a loaded CI machine, still far from the sweep).
    g = await gatewayFixture({ gateway: { idleSweepMs: 120_000 } });
  });
  afterAll(async () => {
    await g?.dispose();
  });

  it("cleared while a stream is in flight, and set to last use + idle time as soon as it ends (idle_unload_at in /v1/models)", async () => {
    // A file trained for 4096 tokens: the stream below lasts seconds (the default tiny file caps it near 256).
    const m = await g.addModel("counted", { loadPolicy: "on-demand", idleTimeoutMs: 600_000, ctxSize: 4096 });
    await writeTinyModel(m.filePath, { contextLength: 4096 });
    expect((await g.client.chat.completions.create(chat("counted"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    const after = await waitFor("the idle deadline after the first request", async () => {
      const u = g.adapter.usage(m.id);
      return u.idleUnloadAt !== null && u.inFlight === 0 ? u : null;
    }, 10_000, 10);
    expect(after.idleUnloadAt).toBe(after.lastUsedAt! + 600_000);

    const s = await g.client.chat.completions.create(stream("counted", { max_tokens: 3000, ignore_eos: true }));
    const it = s[Symbol.asyncIterator]();
    await it.next();
    await waitFor("the deadline cleared during the stream", async () => g.adapter.usage(m.id).idleUnloadAt === null, 10_000, 10);
    const listed = (await g.client.models.list()).data.find((x) => x.id === "counted") as unknown as { idle_unload_at?: number | null };
    expect(listed.idle_unload_at ?? null).toBeNull();
    while (!(await it.next()).done);
    const ended = await waitFor("the deadline after the stream", async () => {
      const u = g.adapter.usage(m.id);
      return u.idleUnloadAt !== null && u.lastUsedAt! > after.lastUsedAt! ? u : null;
    }, 10_000, 10);
    expect(ended.idleUnloadAt).toBe(ended.lastUsedAt! + 600_000);
    const relisted = (await g.client.models.list()).data.find((x) => x.id === "counted") as unknown as { idle_unload_at: number };
    expect(relisted.idle_unload_at).toBe(Math.round(ended.idleUnloadAt! / 1000));
  });
});
