/**
 * A new Linux user's first run, as the README's quick start leads it: no
 * llama-server anywhere (the API and the host test say `npm run llama:build`
 * and its packages), then the build in the cache folder that command fills,
 * a GGUF file in the default model folder (~/models), Discover, enable, and
 * START ALL ENABLED: a real llama-server serves it. No LLAMA_SERVER_BIN and
 * no SYNAPSE_MODEL_ROOTS are set: the defaults have to work.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { startApp, type AppServer } from "../../test/harness/app-server";

type Hello = { hello: { platform: string; llamaServer: { path: string | null; error: string | null } } };

describe("first run on Linux (production build, default folders)", () => {
  let app: AppServer;
  let home: string;
  let emptyCache: string;
  // The project's build of llama-server lives in <cache>/llama-server-<commit>/build/bin/llama-server.
  const buildCache = path.resolve(process.env.LLAMA_SERVER_BIN!, "../../../..");

  beforeAll(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), "synapse-first-run-home-"));
    emptyCache = path.join(home, ".cache", "synapse");
    await mkdir(emptyCache, { recursive: true });
    app = await startApp({
      name: "first-run-linux",
      env: { HOME: home, PATH: "/usr/bin:/bin", LLAMA_SERVER_BIN: undefined, SYNAPSE_MODEL_ROOTS: undefined, SYNAPSE_CACHE_DIR: emptyCache, XDG_CACHE_HOME: undefined },
    });
  });
  afterAll(async () => {
    await app?.dispose();
    await rm(home, { recursive: true, force: true });
  });

  it("before the build: the host test says npm run llama:build and the packages it needs", async () => {
    const hosts = await app.trpc.query<{ id: string }[]>("hosts.list");
    const test = await app.trpc.mutation<Hello>("hosts.test", { id: hosts.data![0]!.id });
    expect(test.data?.hello.platform).toBe("linux");
    expect(test.data?.hello.llamaServer.path).toBeNull();
    expect(test.data?.hello.llamaServer.error).toMatch(/^llama-server not found .*build it with `npm run llama:build` .*sudo apt-get install cmake g\+\+ git openssl/);
    expect(test.data?.hello.llamaServer.error).not.toMatch(/brew install/);
  });

  it("after the build, a GGUF in ~/models, Discover and START ALL ENABLED: the model serves", async () => {
    // restart() fills in the harness's defaults again: leave them out again.
    app = await app.restart({ env: { SYNAPSE_CACHE_DIR: buildCache, LLAMA_SERVER_BIN: undefined, SYNAPSE_MODEL_ROOTS: undefined } });
    const hello = await app.trpc.mutation<Hello & { hello: { modelRoots: string[] } }>("hosts.test", { id: (await app.trpc.query<{ id: string }[]>("hosts.list")).data![0]!.id });
    expect(hello.data?.hello.modelRoots).toEqual([path.join(home, "models")]);
    expect(hello.data?.hello.llamaServer.path).toBe(process.env.LLAMA_SERVER_BIN);
    await mkdir(path.join(home, "models")); // mkdir -p ~/models, as the README says
    await tinyModel(path.join(home, "models"), "first.gguf");
    const hosts = await app.trpc.query<{ id: string }[]>("hosts.list");
    const found = await app.trpc.mutation<{ added: { id: string; name: string }[] }>("models.discover", { hostId: hosts.data![0]!.id });
    expect(found.data?.added.map((a) => a.name), JSON.stringify(found)).toEqual(["first"]);
    const id = found.data!.added[0]!.id;
    expect((await app.trpc.mutation("models.setEnabled", { id, enabled: true })).error).toBeUndefined();
    expect((await app.trpc.mutation("settings.update", { ctxSize: 256, threads: 1, batchSize: 64, ubatchSize: 64, gpuLayers: 0 })).error).toBeUndefined();
    const r = await app.json<{ ok: boolean; started: number; failed: number; results: { name: string; state: string; port: number }[] }>("/api/models/servers/start-all", { method: "POST" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ ok: true, started: 1, failed: 0 });
    const port = r.body.results[0]!.port;
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    await app.json("/api/models/servers/stop-all", { method: "POST" });
  });
});
