/**
 * The gateway's worker thread as the app runs it (testing/gateway-worker.ts:
 * compiled as scripts/build-gateway.mjs compiles it, a real worker thread
 * bridged to the fleet fixture's fleet: migrated SQLite, local agent, real
 * llama-server, tiny models), in front of a stand-in for Next's server.
 * Clients: the official `openai` package and raw sockets.
 */
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { Worker } from "node:worker_threads";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Model } from "~/generated/prisma/client";
import { waitFor } from "~/server/services/fleet/testing/fixture";
import { createGatewayKey, deleteGatewayKey } from "~/server/services/registry/gateway-keys";
import { deleteModel, updateModel } from "~/server/services/registry/models";
import { parseKeyModels } from "./api-key";
import { writeTinyModel } from "../../../host-agent/src/gguf/tiny-model";
import { gatewayFixture, type GatewayFixture, chat } from "./testing/gateway-fixture";
import { startGatewayWorker, type GatewayWorker } from "./testing/gateway-worker";
import type { MainMessage, WorkerConfig, WorkerMessage } from "./worker-protocol";


/** Sends raw bytes on a new connection and collects everything until the server closes it or `until` matches. */
function rawExchange(port: number, chunks: string[], until: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let got = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms; got ${JSON.stringify(got.slice(0, 500))}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    s.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (until(got)) finish();
    });
    s.on("close", finish);
    s.on("error", reject);
    s.on("connect", () => {
      for (const c of chunks) s.write(c);
    });
  });
}

describe("gateway worker thread (real worker, bridged to the fleet fixture)", () => {
  let g: GatewayFixture;
  let w: GatewayWorker;
  let alpha: Model;
  let lazy: Model;
  let longer: Model;

  beforeAll(async () => {
    g = await gatewayFixture();
    alpha = await g.addModel("alpha");
    lazy = await g.addModel("lazy", { loadPolicy: "on-demand" });
    // Room for a long generation (a request in flight for a while): a file trained for 4096 tokens.
    longer = await g.addModel("longer", { ctxSize: 4096 });
    await writeTinyModel(longer.filePath, { contextLength: 4096 });
    for (const m of [alpha, longer]) {
      const r = await g.f.fleet.start(m.id, { wait: true });
      expect(r.state, r.error ?? "").toBe("ready");
    }
    w = await startGatewayWorker(g);
  });

  afterAll(async () => {
    await w?.dispose();
    await g?.dispose();
  });

  const client = () => w.client;
  const records = () => w.records;

  it("answers plain and streamed chat completions; each request's figures reach the main thread, at once when asked for", async () => {
    const before = records().length;
    const plain = await client().chat.completions.create(chat("alpha"));
    expect(plain.choices[0]?.message.content).toMatch(/^[a-z]+$/);
    const stream = await client().chat.completions.create({ ...chat("alpha"), stream: true } as unknown as Parameters<OpenAI["chat"]["completions"]["create"]>[0] & { stream: true });
    let text = "";
    for await (const ev of stream) text += ev.choices[0]?.delta?.content ?? "";
    expect(text).toMatch(/^[a-z]+$/);
    // Held back up to 50 ms in the worker; a read of the figures (/api/metrics) asks for them first, and sees both.
    await w.host.flushNotes(1_000);
    expect(records().length).toBe(before + 2);
    const mine = records().slice(before);
    expect(mine.map((r) => [r.model, r.status])).toEqual([
      ["alpha", 200],
      ["alpha", 200],
    ]);
    expect(mine[0]!.tokens?.completion).toBeGreaterThan(0);
  });

  it("the dashboard's count on the model's ServerEntry follows a request in flight, and returns to 0", async () => {
    const long = client().chat.completions.create(chat("longer", { max_tokens: 3000, ignore_eos: true }));
    await waitFor("the main thread to count the request in flight", async () => g.adapter.usage(longer.id).inFlight === 1, 5_000);
    await long;
    await waitFor("the count back to 0", async () => g.adapter.usage(longer.id).inFlight === 0, 5_000);
    expect(g.adapter.usage(longer.id).lastUsedAt).not.toBeNull();
  });

  it("starts an on-demand model through the main thread's fleet, and names the known models for an unknown one", async () => {
    const answer = await client().chat.completions.create(chat("lazy"));
    expect(answer.choices[0]?.message.content).toMatch(/^[a-z]+$/);
    expect((await g.adapter.models({ fresh: true })).find((m) => m.id === lazy.id)?.state).toBe("ready");
    const err = await client()
      .chat.completions.create(chat("nobody"))
      .then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err?.status).toBe(404);
    expect(err?.message).toContain("alpha");
  });

  it("a deleted gateway key is refused from the next request on, though both threads had it cached; the event log records it", async () => {
    const created = await createGatewayKey(g.f.t.db, { name: "revoked", models: ["alpha"] }, g.f.events);
    const keyed = new OpenAI({ baseURL: `${w.url}/v1`, apiKey: created.key, maxRetries: 0 });
    // Twice: the worker's cache and the main thread's both hold the key now.
    for (let i = 0; i < 2; i++) expect((await keyed.models.list()).data.map((m) => m.id)).toEqual(["alpha"]);
    await deleteGatewayKey(g.f.t.db, { id: created.id }, g.f.events);
    const err = await keyed.models.list().then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err?.status).toBe(401);
    const logged = await g.f.t.db.event.findMany({ where: { kind: "action" }, orderBy: { id: "asc" } });
    expect(logged.map((e) => e.message).filter((m) => m.includes("revoked"))).toEqual([
      `gateway key "revoked" (${created.prefix}…) created, for models alpha`,
      `gateway key "revoked" (${created.prefix}…) deleted`,
    ]);
  });

  it("a key limited to a model follows its rename at once, and does not pass to another model that takes the old name", async () => {
    const m = await g.addModel("before-rename");
    const created = await createGatewayKey(g.f.t.db, { name: "follows", models: ["before-rename"] }, g.f.events);
    const keyed = new OpenAI({ baseURL: `${w.url}/v1`, apiKey: created.key, maxRetries: 0 });
    // Cached in both threads first.
    for (let i = 0; i < 2; i++) expect((await keyed.models.list()).data.map((x) => x.id)).toEqual(["before-rename"]);
    await updateModel(g.f.t.db, { id: m.id, name: "after-rename" }, { appPort: 1, events: g.f.events });
    expect(parseKeyModels((await g.f.t.db.gatewayKey.findUniqueOrThrow({ where: { id: created.id } })).models)).toEqual(["after-rename"]);
    expect((await keyed.models.list()).data.map((x) => x.id)).toEqual(["after-rename"]);
    await g.addModel("before-rename");
    const err = await keyed.chat.completions.create(chat("before-rename")).then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err?.status).toBe(403);
    expect((await keyed.models.list()).data.map((x) => x.id)).toEqual(["after-rename"]);
  });

  it("a rename and a delete reach the worker's copy of the registry from the next request on: the old name is 404 at once", async () => {
    const m = await g.addModel("worker-old", { loadPolicy: "on-demand" });
    expect((await client().models.retrieve("worker-old")).id).toBe("worker-old");
    await updateModel(g.f.t.db, { id: m.id, name: "worker-new" }, { appPort: 3000, events: g.f.events });
    const old = await client().models.retrieve("worker-old").then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(old?.status).toBe(404);
    expect((await client().models.list()).data.map((x) => x.id)).toContain("worker-new");
    await deleteModel(g.f.t.db, { id: m.id }, { events: g.f.events });
    expect((await client().models.list()).data.map((x) => x.id)).not.toContain("worker-new");
  });

  it("hands every other connection to Next with its bytes as sent, and keeps it there", async () => {
    const body = JSON.stringify({ hello: "next" });
    const first = `POST /api/thing HTTP/1.1\r\nHost: 127.0.0.1:${w.port}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    // The same connection then asks for a gateway path: it stays with Next's server (front.ts passes such requests to the worker's Node listener).
    const second = `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:${w.port}\r\nConnection: close\r\n\r\n`;
    const got = await rawExchange(w.port, [first.slice(0, 7), first.slice(7), second], (t) => t.split("next: ").length === 3);
    expect(got).toContain(`next: POST /api/thing ${body}`);
    expect(got).toContain("next: GET /v1/models");
  });

  it("listens before Next's server does: a connection that comes first waits, and reaches Next with its bytes once the worker is told where Next listens", async () => {
    const next = http.createServer((req, res) => res.end(`next: ${req.method} ${req.url}`));
    await new Promise<void>((r) => next.listen(0, "127.0.0.1", r));
    const early = new Worker(w.workerJs, { workerData: { listen: { host: "127.0.0.1", port: 0 }, next: null, channelSocket: w.host.channelSocket } satisfies WorkerConfig });
    try {
      const listening = await new Promise<WorkerMessage>((resolve) => early.on("message", (m: WorkerMessage) => (m.t === "listening" || m.t === "listen-failed") && resolve(m)));
      if (listening.t !== "listening") throw new Error(`the worker did not listen: ${JSON.stringify(listening)}`);
      const request = "GET /early-page HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
      let answered = false;
      const exchange = rawExchange(listening.port, [request.slice(0, 9), request.slice(9)], (t) => t.includes("next: GET /early-page")).then((t) => ((answered = true), t));
      await new Promise((r) => setTimeout(r, 300));
      expect(answered).toBe(false);
      early.postMessage({ t: "next", host: "127.0.0.1", port: (next.address() as AddressInfo).port } satisfies MainMessage);
      expect(await exchange).toContain("next: GET /early-page");
    } finally {
      await early.terminate();
      next.closeAllConnections();
      await new Promise<void>((r) => next.close(() => r()));
    }
  });

  it("a second worker on a port that is taken says so (the app exits with it)", async () => {
    const failed = await new Promise<WorkerMessage>((resolve) => {
      const second = new Worker(w.workerJs, { workerData: { listen: { host: "127.0.0.1", port: w.port }, next: { host: "127.0.0.1", port: 1 }, channelSocket: w.host.channelSocket } satisfies WorkerConfig });
      second.on("message", (m: WorkerMessage) => {
        if (m.t === "listen-failed" || m.t === "listening") {
          resolve(m);
          void second.terminate();
        }
      });
    });
    expect(failed).toMatchObject({ t: "listen-failed", code: "EADDRINUSE" });
  });
});
