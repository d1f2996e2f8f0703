/**
 * The gateway with the real llama-server and the tiny model, driven by the
 * official `openai` client: routing by name and alias, plain and streamed
 * chat, embeddings, llama-server's own endpoints, the states that refuse a
 * request, disconnects, and who may call it.
 */
import http from "node:http";
import { readFileSync } from "node:fs";
import path from "node:path";
import OpenAI from "openai";
import { writeTinyModel } from "../../../host-agent/src/gguf/tiny-model";
import type { ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExtraFlag } from "synapse-host-agent/protocol";
import type { Model } from "~/generated/prisma/client";
import { waitFor } from "~/server/services/fleet/testing/fixture";
import { createGatewayKey } from "~/server/services/registry/gateway-keys";
import { deleteModel, setModelEnabled, updateModel } from "~/server/services/registry/models";
import { anySlotBusy, gatewayFixture, GRAMMAR, serverAuth, type GatewayFixture } from "./testing/gateway-fixture";

function chatParams(model: string, extra: Record<string, unknown> = {}): ChatCompletionCreateParamsNonStreaming {
  return { model, messages: [{ role: "user", content: "hi" }], max_tokens: 8, grammar: GRAMMAR, ...extra } as unknown as ChatCompletionCreateParamsNonStreaming;
}
function streamParams(model: string, extra: Record<string, unknown> = {}): ChatCompletionCreateParamsStreaming {
  return { ...chatParams(model, extra), stream: true } as unknown as ChatCompletionCreateParamsStreaming;
}

async function apiError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(OpenAI.APIError);
    return err as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error("expected the request to fail");
}

describe("gateway: routing to running models (real llama-server, openai client)", () => {
  let g: GatewayFixture;
  let alpha: Model;
  let longer: Model;
  let embed: Model;

  beforeAll(async () => {
    g = await gatewayFixture();
    alpha = await g.addModel("alpha", { alias: "alpha-alias" });
    // Room for a long generation (the disconnect test): a file trained for 4096 tokens.
    longer = await g.addModel("longer", { ctxSize: 4096 });
    await writeTinyModel(longer.filePath, { contextLength: 4096 });
    embed = await g.addModel("embed", { extraFlags: JSON.stringify([{ flag: "--embeddings" }, { flag: "--pooling", value: "mean" }]) });
    await g.addModel("parked");
    await g.addModel("off", { enabled: false });
    for (const m of [alpha, longer, embed]) {
      const r = await g.f.fleet.start(m.id, { wait: true });
      expect(r.state, r.error ?? "").toBe("ready");
    }
  });
  afterAll(async () => {
    await g?.dispose();
  });

  it("GET /v1/models lists every registered model with its state, owned by its host", async () => {
    const page = await g.client.models.list();
    const rows = page.data as unknown as { id: string; owned_by: string; object: string; state: string; aliases: string[] }[];
    expect(rows.map((r) => r.id).sort()).toEqual(["alpha", "embed", "longer", "off", "parked"]);
    const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
    expect(byId.alpha).toMatchObject({ object: "model", owned_by: "local", state: "ready", aliases: ["alpha-alias"], host_reachable: true, state_is_last_known: false });
    expect(byId.parked).toMatchObject({ state: "stopped" });
  });

  it("GET /v1/models/{model} (the openai client's models.retrieve) answers one model by name or alias, 404 with the names otherwise", async () => {
    const byName = (await g.client.models.retrieve("alpha")) as unknown as { id: string; object: string; owned_by: string; state: string };
    expect(byName).toMatchObject({ id: "alpha", object: "model", owned_by: "local", state: "ready" });
    expect((await g.client.models.retrieve("alpha-alias")).id).toBe("alpha");
    const err = await apiError(g.client.models.retrieve("nobody"));
    expect([err.status, err.code]).toEqual([404, "model_not_found"]);
    expect(err.message).toContain("alpha");
  });

  it("a chat completion is answered by the named model, which names itself as asked (--alias)", async () => {
    const r = await g.client.chat.completions.create(chatParams("alpha"));
    expect(r.choices[0]?.message.content).toMatch(/^[a-z]+$/);
    expect(r.model).toBe("alpha-alias");
  });

  it("the Responses API (the openai client's responses.create), plain and streamed, is answered by the named model; a /v1 path the gateway does not serve is a JSON 404 naming the ones it does (it was Next's HTML page)", async () => {
    const r = await g.client.responses.create({ model: "alpha", input: "hi", max_output_tokens: 8, grammar: GRAMMAR } as unknown as Parameters<typeof g.client.responses.create>[0]);
    expect((r as { output_text: string }).output_text).toMatch(/^[a-z]+$/);
    const stream = await g.client.responses.create({ model: "alpha", input: "hi", max_output_tokens: 8, grammar: GRAMMAR, stream: true } as unknown as Parameters<typeof g.client.responses.create>[0]);
    const kinds = new Set<string>();
    for await (const e of stream as AsyncIterable<{ type: string }>) kinds.add(e.type);
    expect(kinds).toContain("response.output_text.delta");
    expect(kinds).toContain("response.completed");
    const unknown = await apiError(g.client.post("/assistants", { body: { model: "alpha" } }));
    expect(unknown.status).toBe(404);
    expect(unknown.code).toBe("unknown_url");
    expect(unknown.message).toMatch(/^404 Invalid URL \(POST \/v1\/assistants\): the gateway serves \/v1\/chat\/completions, .*\/v1\/responses/);
  });

  it("routes by alias too", async () => {
    const r = await g.client.chat.completions.create(chatParams("alpha-alias"));
    expect(r.choices[0]?.message.content).toMatch(/^[a-z]+$/);
  });

  it("a streamed chat completion arrives as several chunks", async () => {
    const stream = await g.client.chat.completions.create(streamParams("alpha", { max_tokens: 12 }));
    let text = "";
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    expect(chunks).toBeGreaterThan(3);
    expect(text).toMatch(/^[a-z]+$/);
  });

  it("embeddings from a model started with --embeddings", async () => {
    const r = await g.client.embeddings.create({ model: "embed", input: ["hello", "world"] });
    expect(r.data).toHaveLength(2);
    expect(r.data[0]!.embedding.length).toBe(64);
  });

  it("embeddings from a model without --embeddings: llama-server's 501 passes through, with x-should-retry: false, so the openai client at its default retries asks once", async () => {
    let asked = 0;
    const counting = new OpenAI({
      baseURL: `${g.url}/v1`,
      apiKey: "not-needed-on-loopback",
      fetch: (url, init) => {
        asked += 1;
        return fetch(url, init);
      },
    });
    const err = (await counting.embeddings.create({ model: "alpha", input: "hello" }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect([err.status, err.headers?.get("x-should-retry")]).toEqual([501, "false"]);
    expect(err.message).toMatch(/--embeddings/);
    expect(asked).toBe(1);
  });

  it("the README's embeddings setup, saved with models.update, makes /v1/embeddings answer; each half alone answers llama-server's error as the README says", async () => {
    // The extra flags exactly as the README's models.update example writes them.
    const readme = readFileSync(path.resolve(import.meta.dirname, "../../../README.md"), "utf8");
    const example = /"extraFlags":(\[[^\]]*\])\}'/.exec(readme.slice(readme.indexOf("**Embeddings.**")));
    expect(example, "the README's Embeddings paragraph has a models.update example with extraFlags").not.toBeNull();
    const documented = JSON.parse(example![1]!) as ExtraFlag[];
    expect(documented).toEqual([{ flag: "--embeddings" }, { flag: "--pooling", value: "mean" }]);
    const said = readme.replace(/\s+/g, " ");
    const m = await g.addModel("embed-setup");
    const deps = { appPort: 1, events: g.f.events };
    const embedError = async () => {
      const err = (await g.client.embeddings.create({ model: "embed-setup", input: "hello" }).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.APIError);
      return err;
    };
    const restart = async () => expect((await g.f.fleet.restart(m.id, { wait: true })).state).toBe("ready");
    // No extra flags: llama-server's 501, which the README quotes.
    expect((await g.f.fleet.start(m.id, { wait: true })).state).toBe("ready");
    const none = await embedError();
    expect(none.status).toBe(501);
    expect(none.message).toContain("This server does not support embeddings. Start it with `--embeddings`");
    expect(said).toContain('501 "This server does not support embeddings. Start it with `--embeddings`"');
    // --embeddings alone: the tiny model's GGUF names no pooling type, and llama-server refuses pooling none.
    await updateModel(g.f.t.db, { id: m.id, extraFlags: [documented[0]!] }, deps);
    await restart();
    const noPooling = await embedError();
    expect(noPooling.status).toBe(400);
    expect(noPooling.message).toContain("Pooling type 'none' is not OAI compatible. Please use a different pooling type");
    expect(said).toContain(`400 "Pooling type 'none' is not OAI compatible. Please use a different pooling type"`);
    // Both, as documented: vectors, one per input.
    await updateModel(g.f.t.db, { id: m.id, extraFlags: documented }, deps);
    await restart();
    const r = await g.client.embeddings.create({ model: "embed-setup", input: ["hello", "world"] });
    expect(r.data.map((d) => d.embedding.length)).toEqual([64, 64]);
    // Gone again: the other tests list the models this file registers.
    await g.f.fleet.stop(m.id);
    await deleteModel(g.f.t.db, { id: m.id }, deps);
  });

  it("llama-server's own endpoints: /completion, /tokenize and /detokenize, /props and /slots by ?model=", async () => {
    const post = (path: string, body: unknown) => fetch(`${g.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const c = await post("/completion", { model: "alpha", prompt: "hi", n_predict: 4, grammar: GRAMMAR });
    expect(c.status).toBe(200);
    expect(((await c.json()) as { content: string }).content).toMatch(/^[a-z]+$/);
    const tok = await post("/tokenize", { model: "alpha", content: "abc" });
    const { tokens } = (await tok.json()) as { tokens: number[] };
    expect(tokens.length).toBeGreaterThan(0);
    const detok = await post("/detokenize", { model: "alpha", tokens });
    expect(((await detok.json()) as { content: string }).content).toContain("abc");
    const props = await fetch(`${g.url}/props?model=alpha`);
    expect(props.status).toBe(200);
    expect(((await props.json()) as { model_path: string }).model_path).toContain("alpha.gguf");
    const slots = await fetch(`${g.url}/slots?model=longer`);
    expect(slots.status).toBe(200);
    expect(((await slots.json()) as { n_ctx: number }[])[0]!.n_ctx).toBe(4096);
  });

  it("rerank and infill reach the model and pass its own error through unchanged", async () => {
    for (const [path, body] of [
      ["/v1/rerank", { model: "alpha", query: "a", documents: ["b", "c"] }],
      ["/rerank", { model: "alpha", query: "a", documents: ["b"] }],
      ["/infill", { model: "alpha", input_prefix: "a", input_suffix: "b" }],
    ] as const) {
      const init = { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
      const direct = await fetch(`http://127.0.0.1:${alpha.port}${path}`, { ...init, headers: { ...init.headers, ...serverAuth(alpha) } });
      const via = await fetch(`${g.url}${path}`, init);
      expect(via.status, path).toBe(direct.status);
      expect(via.status, path).toBeGreaterThanOrEqual(400);
      expect(await via.text(), path).toBe(await direct.text());
    }
  });

  it("each model server has its own key: /completion on its port is 401 without it, /health stays open; the gateway sends it", async () => {
    expect(alpha.serverApiKey).toBeTruthy();
    const body = JSON.stringify({ prompt: "hi", n_predict: 2, grammar: GRAMMAR });
    const bare = await fetch(`http://127.0.0.1:${alpha.port}/completion`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(bare.status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${alpha.port}/health`)).status).toBe(200);
    const keyed = await fetch(`http://127.0.0.1:${alpha.port}/completion`, { method: "POST", headers: { "content-type": "application/json", ...serverAuth(alpha) }, body });
    expect(keyed.status).toBe(200);
    // The key is not in the process's command line (the agent passes it in the environment).
    const { readFile } = await import("node:fs/promises");
    const status = (await g.f.fleet.status()).find((s) => s.name === "alpha")!;
    expect((await readFile(`/proc/${status.pid}/cmdline`, "utf8")).includes(alpha.serverApiKey!)).toBe(false);
  });

  it("unknown model: 404 in OpenAI's shape, listing the names", async () => {
    const err = await apiError(g.client.chat.completions.create(chatParams("nope")));
    expect(err.status).toBe(404);
    expect(err.code).toBe("model_not_found");
    expect(err.message).toContain("alpha, embed, longer, off, parked");
  });

  it("a stopped 'always' model: 409 saying how to start it; a disabled one: 409", async () => {
    const stopped = await apiError(g.client.chat.completions.create(chatParams("parked")));
    expect(stopped.status).toBe(409);
    expect(stopped.message).toMatch(/Start button|start-all/);
    const disabled = await apiError(g.client.chat.completions.create(chatParams("off")));
    expect(disabled.status).toBe(409);
    expect(disabled.code).toBe("model_disabled");
  });

  it("a 409 is not retried by the openai client at its default retries (x-should-retry: false): a stopped model stays stopped", async () => {
    let sent = 0;
    const retrying = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: "not-needed-on-loopback", fetch: (url: RequestInfo | URL, init?: RequestInit) => (sent++, fetch(url, init)) });
    const err = await apiError(retrying.chat.completions.create(chatParams("parked")));
    expect([err.status, err.headers?.get("x-should-retry")]).toEqual([409, "false"]);
    expect(sent).toBe(1);
  });

  it("a request without a model: 400 naming the field", async () => {
    const r = await fetch(`${g.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages: [] }) });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { param: string } }).error.param).toBe("model");
  });

  it("a client that disconnects mid-stream frees the model's slot", async () => {
    const ac = new AbortController();
    const stream = await g.client.chat.completions.create(streamParams("longer", { max_tokens: 3000, ignore_eos: true }), { signal: ac.signal });
    let chunks = 0;
    try {
      for await (const _ of stream) {
        if (++chunks === 5) break; // leaves the loop: the client aborts the request
      }
    } catch {
      // aborted
    }
    // 3000 tokens take this server about 8 s; the slot must be free long before.
    const t0 = Date.now();
    await waitFor("the slot to go idle", async () => !(await anySlotBusy(longer)), 1500, 20);
    expect(Date.now() - t0).toBeLessThan(1500);
  });

  it("cross-site requests are refused on loopback: foreign Origin, text/plain body, foreign Host", async () => {
    const body = JSON.stringify(chatParams("alpha"));
    const foreign = await fetch(`${g.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", origin: "https://evil.example" }, body });
    expect(foreign.status).toBe(403);
    const plain = await fetch(`${g.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "text/plain" }, body });
    expect(plain.status).toBe(415);
    // fetch cannot set Host; node:http can, as a DNS-rebinding page's browser would send it.
    const hostStatus = await new Promise<number>((resolve, reject) => {
      http.get(`${g.url}/v1/models`, { headers: { host: "attacker.example:80" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on("error", reject);
    });
    expect(hostStatus).toBe(403);
    // None of them reached the model: its slot never worked for them (only the same-origin one does).
    const ok = await fetch(`${g.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", origin: g.url }, body });
    expect(ok.status).toBe(200);
  });
});

describe("gateway: who may call it with an admin token set", () => {
  let g: GatewayFixture;
  const TOKEN = "gateway-test-token-0123456789";
  beforeAll(async () => {
    g = await gatewayFixture({ guard: { apiToken: TOKEN } });
  });
  afterAll(async () => {
    await g?.dispose();
  });

  it("401 without the token, 200 with it as the client's API key", async () => {
    const err = await apiError(g.client.models.list());
    expect(err.status).toBe(401);
    const withKey = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
    const page = await withKey.models.list();
    expect(page.data).toEqual([]);
  });

  it("a gateway key limited to one model: that model answers, another is 403, /v1/models lists only its own; a wrong key is 401", async () => {
    const one = await g.addModel("one");
    await g.addModel("two");
    expect((await g.f.fleet.start(one.id)).state).toBe("ready");
    const created = await createGatewayKey(g.f.t.db, { name: "ci", models: ["one"] });
    expect(created.key).toMatch(/^sk-synapse-/);
    // Stored hashed: the key itself is nowhere in the database.
    expect(JSON.stringify(await g.f.t.db.gatewayKey.findMany())).not.toContain(created.key);
    const keyed = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: created.key, maxRetries: 0 });
    const r = await keyed.chat.completions.create(chatParams("one"));
    expect(r.choices[0]?.message.content).toMatch(/^[a-z]+$/);
    const other = await apiError(keyed.chat.completions.create(chatParams("two")));
    expect([other.status, other.code]).toEqual([403, "model_not_allowed"]);
    expect((await keyed.models.list()).data.map((m) => m.id)).toEqual(["one"]);
    expect((await keyed.models.retrieve("one")).id).toBe("one");
    // Retrieve agrees with a completion: 403 for a model the key does not cover.
    expect((await apiError(keyed.models.retrieve("two"))).status).toBe(403);
    // An unknown name: 404 listing only the models the key may use (it learns no other names).
    const unknown = await apiError(keyed.chat.completions.create(chatParams("nobody")));
    expect([unknown.status, unknown.code]).toEqual([404, "model_not_found"]);
    expect(unknown.message).toContain("known models: one");
    expect(unknown.message).not.toContain("two");
    expect((await apiError(keyed.models.retrieve("nobody"))).message).not.toContain("two");
    const wrong = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: `${created.key.slice(0, -4)}AAAA`, maxRetries: 0 });
    expect((await apiError(wrong.models.list())).status).toBe(401);
  });

  it("a key may name its models by alias (stored as the registry name); an unknown name is refused and nothing is stored", async () => {
    await g.addModel("three", { alias: "three-alias" });
    const created = await createGatewayKey(g.f.t.db, { name: "by-alias", models: ["three-alias", "three"] });
    expect(created.models).toEqual(["three"]);
    const before = await g.f.t.db.gatewayKey.count();
    await expect(createGatewayKey(g.f.t.db, { name: "bad", models: ["three", "nope"] })).rejects.toThrow(/no model named nope \(by registry name or alias\)/);
    expect(await g.f.t.db.gatewayKey.count()).toBe(before);
  });
});

describe("gateway: registry edits are served from the next request on", () => {
  let g: GatewayFixture;
  beforeAll(async () => {
    g = await gatewayFixture();
  });
  afterAll(async () => {
    await g?.dispose();
  });
  const deps = () => ({ appPort: 3000, events: g.f.events });

  it("a renamed on-demand model: the old name is 404 at once (it started the model for a second), the new one is served; a deleted model is 404, not a failed start", async () => {
    const m = await g.addModel("before-name", { loadPolicy: "on-demand" });
    // The gateway's snapshot is fresh (well within its one-second age): only the edit's event can tell it.
    expect((await g.client.models.list()).data.map((x) => x.id)).toContain("before-name");
    await updateModel(g.f.t.db, { id: m.id, name: "after-name" }, deps());
    const old = await apiError(g.client.chat.completions.create(chatParams("before-name")));
    expect([old.status, old.code]).toEqual([404, "model_not_found"]);
    expect(await g.f.fleet.status().then((all) => all.find((s) => s.modelId === m.id)?.state)).toBe("stopped");
    expect((await g.client.chat.completions.create(chatParams("after-name"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);

    await g.f.fleet.stop(m.id);
    expect((await g.client.models.list()).data.map((x) => x.id)).toContain("after-name");
    await deleteModel(g.f.t.db, { id: m.id }, deps());
    const gone = await apiError(g.client.chat.completions.create(chatParams("after-name")));
    expect([gone.status, gone.code]).toEqual([404, "model_not_found"]);
    expect((await g.client.models.list()).data.map((x) => x.id)).not.toContain("after-name");
  });

  it("a running model that is disabled is refused 409 from the next request on (it was served for a second)", async () => {
    const m = await g.addModel("switch-off");
    expect((await g.f.fleet.start(m.id)).state).toBe("ready");
    expect((await g.client.chat.completions.create(chatParams("switch-off"))).choices[0]?.message.content).toMatch(/^[a-z]+$/);
    await setModelEnabled(g.f.t.db, { id: m.id, enabled: false }, deps());
    const off = await apiError(g.client.chat.completions.create(chatParams("switch-off")));
    expect([off.status, off.code]).toEqual([409, "model_disabled"]);
    await g.f.fleet.stop(m.id);
  });
});
