/**
 * Generated tokens per second while a long generation runs (the real
 * llama-server, a stream through the gateway): llama-server adds a request's
 * tokens to `tokens_predicted_total` only when it ends, so from the counter
 * alone the dashboard read 0 tok/s for as long as the generation ran (a
 * trial saw 0 for a minute-long stream, then a burst). The rate adds the
 * working slots' tokens so far (/slots `n_decoded`).
 */
import type { ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../../../host-agent/src/gguf/tiny-model";
import type { Model } from "~/generated/prisma/client";
import { gatewayFixture, GRAMMAR, type GatewayFixture } from "~/server/gateway/testing/gateway-fixture";
import { createUpstream } from "~/server/gateway/upstream";
import { ratesBetween } from "./rates";
import { readServer } from "./server-reader";

describe("generated tokens per second during a long generation (real llama-server)", () => {
  let g: GatewayFixture;
  let longer: Model;

  beforeAll(async () => {
    g = await gatewayFixture();
    // A generation of many seconds (the reads below take one and a half): a file trained for 65536 tokens.
    longer = await g.addModel("longer", { ctxSize: 65_536 });
    await writeTinyModel(longer.filePath, { contextLength: 65_536 });
    const r = await g.f.fleet.start(longer.id, { wait: true });
    expect(r.state, r.error ?? "").toBe("ready");
  });
  afterAll(async () => {
    await g?.dispose();
  });

  it("is above 0 while the stream runs, though llama-server's tokens_predicted_total has not moved", async () => {
    const abort = new AbortController();
    const stream = await g.client.chat.completions.create({ model: "longer", messages: [{ role: "user", content: "hi" }], max_tokens: 40_000, ignore_eos: true, grammar: GRAMMAR, stream: true } as unknown as ChatCompletionCreateParamsStreaming, { signal: abort.signal });
    const received = (async () => {
      let n = 0;
      try {
        for await (const _ of stream) n++;
      } catch {
        // aborted below
      }
      return n;
    })();
    const upstream = createUpstream();
    const target = { host: "127.0.0.1", port: longer.port, apiKey: longer.serverApiKey };
    try {
      // A few tokens in, then two reads a second apart, as the app's reader makes them every few seconds.
      await new Promise((r) => setTimeout(r, 300));
      const first = await readServer(upstream, target, { timeoutMs: 5000 });
      await new Promise((r) => setTimeout(r, 1000));
      const second = await readServer(upstream, target, { timeoutMs: 5000 });

      expect(second.slots).toMatchObject({ busy: 1 });
      expect(second.figures.generatedTokens, "the counter moves only when a request ends").toBe(first.figures.generatedTokens);
      expect(second.slots!.generating).toBeGreaterThan(first.slots!.generating);
      const rates = ratesBetween(first, second)!;
      expect(rates.generatedPerS).toBeGreaterThan(0);
      // The tokens the working slot generated between the reads, per second of the interval.
      expect(rates.generatedPerS).toBeCloseTo((second.slots!.generating - first.slots!.generating) / ((second.at - first.at) / 1000), 6);
    } finally {
      abort.abort();
      await received;
      upstream.close();
    }
  });
});
