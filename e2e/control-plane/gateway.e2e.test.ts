/**
 * The gateway as the image runs it: the production build started by
 * `node scripts/start.mjs --no-build`, with the front path (dist/gateway,
 * shipped as /app/gateway) in front of Next on the app's port. Driven by the
 * official `openai` client with OPENAI_BASE_URL = the app's /v1.
 */
import net from "node:net";
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../host-agent/test/harness/ports";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { startApp, type AppServer } from "../../test/harness/app-server";

const GRAMMAR = "root ::= [a-z]+";

describe("gateway on the app's port (production server)", () => {
  let app: AppServer;
  let client: OpenAI;

  beforeAll(async () => {
    app = await startApp({ name: "gateway" });
    const file = await tinyModel(app.dirs.modelRoot, "tiny.gguf");
    const created = await app.trpc.mutation("models.create", { name: "tiny", filePath: file, port: await freePort(), enabled: true, ctxSize: 256, threads: 1 });
    expect(created.error, JSON.stringify(created.error)).toBeUndefined();
    const started = await app.json<{ ok: boolean }>("/api/models/servers/start-all", { method: "POST" });
    expect(started.body.ok, JSON.stringify(started.body)).toBe(true);
    client = new OpenAI({ baseURL: `${app.url}/v1`, apiKey: "loopback", maxRetries: 0 });
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("OPENAI_BASE_URL=<app>/v1: models list and a chat completion through the official client", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => [m.id, m.owned_by])).toEqual([["tiny", "local"]]);
    const r = await client.chat.completions.create({ model: "tiny", messages: [{ role: "user", content: "hi" }], max_tokens: 6, grammar: GRAMMAR } as unknown as ChatCompletionCreateParamsNonStreaming);
    expect(r.choices[0]?.message.content).toMatch(/^[a-z]+$/);
    expect(r.model).toBe("tiny");
  });

  it("an on-demand start that fails answers 503 with the reason, and the app's log says so at warn (an operator reads docker logs)", async () => {
    // Another process holds the model's port, so its llama-server cannot start.
    const holder = net.createServer();
    const port = await freePort();
    await new Promise<void>((r) => holder.listen(port, "127.0.0.1", r));
    try {
      const file = await tinyModel(app.dirs.modelRoot, "blocked.gguf");
      const created = await app.trpc.mutation("models.create", { name: "blocked", filePath: file, port, enabled: true, ctxSize: 256, threads: 1, loadPolicy: "on-demand" });
      expect(created.error, JSON.stringify(created.error)).toBeUndefined();
      const err = await client.chat.completions.create({ model: "blocked", messages: [{ role: "user", content: "hi" }], max_tokens: 4 }).then(
        () => null,
        (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
      );
      expect(err?.status).toBe(503);
      expect(err?.message).toContain(`port ${port} is held`);
      await expect
        .poll(() => app.logs().filter((l) => l.level === "warn" && l.state === "failed" && String(l.msg).includes(`port ${port} is held`)).length, { timeout: 5_000 })
        .toBe(1);
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });

  it("the rest of the app is still Next's, and the gateway refuses cross-site posts", async () => {
    expect((await app.fetch("/api/health")).status).toBe(200);
    expect((await app.fetch("/")).status).toBe(200);
    const r = await app.fetch("/v1/chat/completions", { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ model: "tiny" }) });
    expect(r.status).toBe(415);
  });

  it("START ALL ENABLED leaves an on-demand model idle (not loaded) and names it (onDemand), so it is not taken for one it forgot", async () => {
    const created = await app.trpc.mutation("models.create", { name: "lazy-e2e", filePath: await tinyModel(app.dirs.modelRoot, "lazy.gguf"), port: await freePort(), enabled: true, ctxSize: 256, threads: 1, loadPolicy: "on-demand" });
    expect(created.error, JSON.stringify(created.error)).toBeUndefined();
    const started = await app.json<{ ok: boolean; onDemand?: string[]; results: { name: string }[] }>("/api/models/servers/start-all", { method: "POST" });
    expect(started.body.onDemand).toContain("lazy-e2e");
    expect(started.body.results.map((r) => r.name)).not.toContain("lazy-e2e");
    const listed = await client.models.list();
    // Idle, as synapse status and the dashboard say of an on-demand model that is not loaded; its server is stopped.
    expect(listed.data.find((m) => m.id === "lazy-e2e")).toMatchObject({ state: "idle", server_state: "stopped" });
  });
});
