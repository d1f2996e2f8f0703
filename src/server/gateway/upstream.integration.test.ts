/**
 * The gateway's connections to a model's server, with the real llama-server:
 * llama-server closes its connection after every streamed answer (its
 * headers say keep-alive all the same), so such a connection must not carry
 * another request.
 */
import type { ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Model } from "~/generated/prisma/client";
import { gatewayFixture, GRAMMAR, type GatewayFixture } from "./testing/gateway-fixture";

const chat = (model: string) => ({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: GRAMMAR }) as unknown as ChatCompletionCreateParamsNonStreaming;

describe("gateway upstream connections (real llama-server)", () => {
  let g: GatewayFixture;
  let m: Model;

  beforeAll(async () => {
    // Two connections per server, fewer than the model's slots: requests wait in the agent's queue for them.
    g = await gatewayFixture({ gateway: { upstream: { maxSockets: 2 } } });
    m = await g.addModel("alpha", { parallel: 8, ctxSize: 1024 });
    const r = await g.f.fleet.start(m.id, { wait: true });
    expect(r.state, r.error ?? "").toBe("ready");
  });
  afterAll(async () => {
    await g?.dispose();
  });

  it("streams that wait for connections other streams used are all answered, none 502", async () => {
    // 8 at once through 2 connections, 3 times: each stream after the first two waits in the agent's
    // queue and is handed a connection a stream just used.
    const stream = async () => {
      const s = await g.client.chat.completions.create({ ...chat("alpha"), max_tokens: 16, ignore_eos: true, stream: true } as unknown as ChatCompletionCreateParamsStreaming);
      let chunks = 0;
      for await (const _ of s) chunks++;
      return chunks;
    };
    for (let round = 0; round < 3; round++) {
      const got = await Promise.allSettled(Array.from({ length: 8 }, stream));
      expect(got.map((r) => (r.status === "fulfilled" ? "answered" : String(r.reason)))).toEqual(Array(8).fill("answered"));
    }
    // And a plain request after them still goes through.
    expect((await g.client.chat.completions.create(chat("alpha"))).choices).toHaveLength(1);
  });
});
