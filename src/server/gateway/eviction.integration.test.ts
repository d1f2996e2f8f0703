/**
 * Eviction, for real: a host with a 56 MiB budget set by hand, on-demand models of about 21 MiB each
 * (the project's GGUF writer), the real llama-server, the gateway, and the official `openai` client.
 * An on-demand request that does not fit stops the least recently used idle on-demand model (cause
 * `evicted`), never one with a stream in flight; when even that cannot make room it answers 503 with the
 * numbers, and stops nothing.
 */
import OpenAI from "openai";
import type { ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatewayFixture, chat } from "./testing/gateway-fixture";
import { addSized as addSizedTo, budgetedGateway, BUDGET_MIB, HUGE, SHAPE } from "./testing/memory-budget";



async function status(g: GatewayFixture, name: string) {
  return (await g.f.fleet.status()).find((s) => s.name === name)!;
}

describe("gateway: eviction when an on-demand start does not fit", () => {
  let g: GatewayFixture;

  beforeAll(async () => {
    g = await budgetedGateway();
  });
  afterAll(async () => {
    await g?.dispose();
  });

  const addSized = (name: string, shape: typeof SHAPE) => addSizedTo(g, name, shape);

  it("evicts the idle model, not the least recently used one that has a stream in flight; 503 with the numbers when nothing idle is enough", async () => {
    const busy = await addSized("busy", SHAPE);
    const idle = await addSized("idle", SHAPE);
    const fresh = await addSized("fresh", SHAPE);
    const huge = await addSized("huge", HUGE);
    expect(busy.sizeBytes! * 3).toBeGreaterThan(BUDGET_MIB * 1024 ** 2);

    // busy: a long stream, started first (so it is the least recently used), left unread: in flight. Its
    // chunks carry 20 top log-probabilities each (megabytes in all), more than socket buffers hold, so the
    // gateway cannot finish it ahead of this reader however fast the server generates.
    const s = await g.client.chat.completions.create({ ...chat("busy", { max_tokens: 3800, ignore_eos: true, logprobs: true, top_logprobs: 20 }), stream: true } as unknown as ChatCompletionCreateParamsStreaming);
    const it = s[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    // idle: used after busy's request began, answered, nothing in flight.
    expect((await g.client.chat.completions.create(chat("idle"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    expect(g.adapter.usage(busy.id)).toMatchObject({ inFlight: 1 });
    expect(g.adapter.usage(idle.id)).toMatchObject({ inFlight: 0 });
    expect(g.adapter.usage(busy.id).lastUsedAt!).toBeLessThan(g.adapter.usage(idle.id).lastUsedAt!);
    const busyPid = (await status(g, "busy")).pid;

    // fresh does not fit next to both: idle is stopped for it, busy keeps its server and its stream.
    expect((await g.client.chat.completions.create(chat("fresh"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    expect(await status(g, "idle")).toMatchObject({ state: "stopped", cause: "evicted", desired: "stopped" });
    expect(await status(g, "busy")).toMatchObject({ state: "ready", pid: busyPid });
    expect(g.adapter.usage(busy.id).inFlight, "busy's stream was in flight all along").toBe(1);
    expect(await status(g, "fresh")).toMatchObject({ state: "ready" });
    const evictedEvent = await g.f.t.db.event.findFirst({ where: { modelId: idle.id, kind: "action", message: { contains: "evicted" } } });
    expect(evictedEvent?.message).toBe("idle: evicted to make room for fresh on local");
    const stoppedEvent = await g.f.t.db.event.findFirst({ where: { modelId: idle.id, kind: "state", state: "stopped" }, orderBy: { id: "desc" } });
    expect(JSON.parse(stoppedEvent?.data ?? "{}")).toMatchObject({ cause: "evicted" });
    // The stop says why from its first line: no "stop requested" for an eviction.
    const idleEvents = await g.f.t.db.event.findMany({ where: { modelId: idle.id, id: { gte: evictedEvent!.id } }, orderBy: { id: "asc" } });
    expect(idleEvents.map((e) => e.message)).toEqual(["idle: evicted to make room for fresh on local", "idle: stopping (evicted to make room for fresh)", "idle: stopped (evicted to make room)"]);

    // huge (about 39 MiB) cannot fit even with fresh evicted (busy is in flight): 503 with the numbers, nothing stopped.
    const err = (await g.client.chat.completions.create(chat("huge")).then(
      () => null,
      (e: unknown) => e,
    )) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBe(503);
    expect(err.code).toBe("insufficient_memory");
    // Waiting can help (busy's stream ends, then both are on-demand models that unload): a retry is invited, not refused.
    expect(Number(err.headers?.get("retry-after"))).toBeGreaterThan(0);
    expect(err.headers?.get("x-should-retry")).toBeNull();
    expect(err.message).toMatch(/^503 model "huge" cannot be loaded now: huge needs \d+\.\d MiB \(weights \d+\.\d, KV cache \d+\.\d, compute \d+\.\d\); local has 1\d\.\d of 56\.0 MiB left; stop busy \(\d+\.\d MiB\) and fresh \(\d+\.\d MiB\)$/);
    expect(await status(g, "fresh")).toMatchObject({ state: "ready" });
    expect(await status(g, "huge")).toMatchObject({ state: "stopped", desired: "stopped" });
    expect(huge.id).toBeTruthy();

    // The stream in flight was never cut: read it to its end.
    let chunks = 1;
    for (let r = await it.next(); !r.done; r = await it.next()) chunks += 1;
    expect(chunks).toBeGreaterThan(1000);
    expect(fresh.id).toBeTruthy();
  });
});
