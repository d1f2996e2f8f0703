/**
 * The gateway's queue figures (synapse_gateway_requests_running / _queued,
 * per model) follow a model's rename: the series is labelled with the name
 * the model has now, and the old name is gone (a model that takes the old
 * name later is not counted under another's figures).
 */
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, expect, it } from "vitest";
import { updateModel } from "~/server/services/registry/models";
import type { ModelQueue } from "./metrics-port";
import { gatewayFixture, GRAMMAR, type GatewayFixture } from "./testing/gateway-fixture";

let g: GatewayFixture;
let source: (() => ModelQueue[]) | null = null;

beforeAll(async () => {
  g = await gatewayFixture({
    metrics: () => ({
      record: () => undefined,
      setQueueSource: (s) => {
        source = s;
        return () => undefined;
      },
    }),
  });
});
afterAll(async () => {
  await g?.dispose();
});

const chat = (model: string) => ({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: GRAMMAR }) as unknown as ChatCompletionCreateParamsNonStreaming;

it("a renamed model's queue figures carry its new name, and the old name is gone", async () => {
  const m = await g.addModel("q-before");
  expect((await g.f.fleet.start(m.id, { wait: true })).state).toBe("ready");
  await g.client.chat.completions.create(chat("q-before"));
  expect(source!().map((q) => q.model)).toEqual(["q-before"]);

  await g.f.fleet.stop(m.id);
  await updateModel(g.f.t.db, { id: m.id, name: "q-after" }, { appPort: 1 });
  expect((await g.f.fleet.start(m.id, { wait: true })).state).toBe("ready");
  const client = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: "loopback", maxRetries: 0 });
  await client.chat.completions.create(chat("q-after"));
  expect(source!().map((q) => q.model)).toEqual(["q-after"]);
});
