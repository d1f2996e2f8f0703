/**
 * A 503 insufficient_memory tells clients whether waiting can help, for real: a host with a 56 MiB budget
 * set by hand, an `always` model of about 21 MiB running (never evicted, never unloaded), an on-demand model
 * of about 39 MiB that cannot fit next to it, the real llama-server, the gateway, and the official `openai`
 * client with its default retries (2). Nothing that may stop by itself would make room, so the answer says
 * `x-should-retry: false` with no Retry-After, and the client gives up at once. (Before, it carried
 * `Retry-After: 30` and the client asked twice more, a minute, for the same answer.) The case where waiting
 * can help (on-demand models that will unload) keeps its Retry-After: eviction.integration.test.ts.
 */
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRAMMAR, type GatewayFixture } from "./testing/gateway-fixture";
import { addSized as addSizedTo, budgetedGateway, HUGE, SHAPE } from "./testing/memory-budget";


describe("gateway: a model that does not fit next to models that stay", () => {
  let g: GatewayFixture;

  beforeAll(async () => {
    g = await budgetedGateway();
  });
  afterAll(async () => {
    await g?.dispose();
  });

  const addSized = (name: string, shape: typeof SHAPE, loadPolicy: "always" | "on-demand") => addSizedTo(g, name, shape, loadPolicy);

  it("answers 503 insufficient_memory with x-should-retry: false and no Retry-After; the openai client (maxRetries 2) gives up at once", async () => {
    const steady = await addSized("steady", SHAPE, "always");
    const huge = await addSized("huge", HUGE, "on-demand");
    expect((await g.f.fleet.start(steady.id)).state).toBe("ready");

    // The client as people use it: its default retries, which honour x-should-retry and Retry-After.
    const client = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: "not-needed-on-loopback", maxRetries: 2, timeout: 60_000 });
    const body = { model: "huge", messages: [{ role: "user", content: "hi" }], max_tokens: 8, grammar: GRAMMAR } as unknown as ChatCompletionCreateParamsNonStreaming;
    const t0 = performance.now();
    const err = (await client.chat.completions.create(body).then(
      () => null,
      (e: unknown) => e,
    )) as InstanceType<typeof OpenAI.APIError>;
    const elapsedMs = performance.now() - t0;

    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect([err.status, err.code]).toEqual([503, "insufficient_memory"]);
    expect(err.headers?.get("x-should-retry")).toBe("false");
    expect(err.headers?.get("retry-after")).toBeNull();
    expect(err.message).toMatch(/^503 model "huge" cannot be loaded now: huge needs \d+\.\d MiB .*; local has \d+\.\d of 56\.0 MiB left; .*stop steady \(\d+\.\d MiB\).*; retrying will not help: no model that may stop by itself \(on demand, or a stop or start under way\) would make room$/);
    // One request, not three: the refusal was recorded once, and the client did not wait (a retry waits Retry-After).
    const refusals = await g.f.t.db.event.count({ where: { modelId: huge.id, kind: "error", message: { contains: "not started" } } });
    expect(refusals).toBe(1);
    expect(elapsedMs, `the client gave up after ${Math.round(elapsedMs)} ms`).toBeLessThan(3000);
    // Nothing was stopped for it: steady is `always`.
    expect((await g.f.fleet.status()).find((s) => s.name === "steady")).toMatchObject({ state: "ready" });
  });
});
