/**
 * The `synapse` CLI over real loopback sockets.
 *
 * `status` against the app's own tRPC router and gateway on one loopback server, over a real runtime (SQLite
 * file, local agent, real llama-server, tiny models): each model's load policy, requests in flight, last use
 * and idle unload as a user reads them.
 *
 * What it says when the call fails: no app at SYNAPSE_URL (the connection is refused), the app's guard
 * refusing a missing token (its 401 body, made by guard.ts's own checkRequest as src/proxy.ts sends it), and
 * something at SYNAPSE_URL that is not the app (a plain web server's HTML page).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePorts } from "../../host-agent/test/harness/ports";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { appRouter } from "~/server/api/root";
import { createContextInner } from "~/server/api/trpc";
import { createFleetAdapter, type FleetAdapter } from "~/server/gateway/fleet-adapter";
import { createGateway, type Gateway } from "~/server/gateway/gateway";
import { createKeyStore } from "~/server/gateway/key-store";
import { checkRequest } from "~/server/http/guard";
import { callerRuntime, type CallerRuntime } from "~/server/services/fleet/testing/caller-runtime";
import { waitFor } from "~/server/services/fleet/testing/fixture";
import { main } from "./cli";

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A loopback port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

async function status(url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const before = process.env.SYNAPSE_URL;
  process.env.SYNAPSE_URL = url;
  let stdout = "";
  let stderr = "";
  try {
    const code = await main(["status"], (s) => (stdout += s), (s) => (stderr += s));
    return { code, stdout, stderr };
  } finally {
    if (before === undefined) delete process.env.SYNAPSE_URL;
    else process.env.SYNAPSE_URL = before;
  }
}

describe("synapse CLI when the call fails", () => {
  it("no app at SYNAPSE_URL: says it cannot reach it and why, not that it 'answered an error'", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const res = await status(url);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(new RegExp(`^synapse: cannot reach ${url}: fetch failed: connect ECONNREFUSED 127\\.0\\.0\\.1:\\d+ `));
    expect(res.stderr).not.toMatch(/answered/);
  });

  it("the app refuses a missing token: its status and message (set SYNAPSE_API_TOKEN), not tRPC's 'Unable to transform response'", async () => {
    const url = await listen((req, res) => {
      const verdict = checkRequest({ method: req.method ?? "GET", pathname: new URL(req.url ?? "/", "http://x").pathname, headers: { get: (n) => (req.headers[n.toLowerCase()] as string | undefined) ?? null } }, { allowedHosts: [], listenHost: "127.0.0.1", apiToken: "a-token-of-sixteen-chars" });
      const body = verdict.ok ? { result: { data: [] } } : { error: { code: verdict.code, message: verdict.message } };
      res.writeHead(verdict.ok ? 200 : verdict.status, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
    const res = await status(url);
    expect(res.code).toBe(3);
    expect(res.stderr).toBe(`synapse: ${url} answered 401: missing or wrong API token: send Authorization: Bearer <SYNAPSE_API_TOKEN>\nsynapse: the app asks for its API token: set SYNAPSE_API_TOKEN to the app's token (SYNAPSE_API_TOKEN=… npm run synapse -- …)\n`);
  });

  it("something else at SYNAPSE_URL (an HTML page): says it is not the app's API", async () => {
    const url = await listen((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!DOCTYPE html><html><body>hello</body></html>"));
    const res = await status(url);
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(new RegExp(`^synapse: ${url} did not answer as the app's API does \\(.*not valid JSON\\); is SYNAPSE_URL the app's address\\?\\n$`));
  });
});

describe("synapse status against an app whose clock is off", () => {
  it("counts LAST USED and IDLE UNLOAD from the app's clock (its answer's Date header), not this machine's", async () => {
    // An app 90 s ahead (a remote machine): its status view's times are of its clock, and so is its Date header.
    const SKEW_MS = 90_000;
    const url = await listen((_req, res) => {
      const date = new Date(Date.now() + SKEW_MS).toUTCString();
      // The middle of the second the header names: the app's "now" as the CLI can know it.
      const appNow = Date.parse(date) + 500;
      const view = { host: "local", pid: 4242, uptimeMs: 60_000, restarts: 0, lastError: null, desired: "running", cause: null, enabled: true };
      const rows = [{ ...view, name: "warm", port: 8081, state: "ready", loadPolicy: "on-demand", inFlight: 0, lastUsedAt: new Date(appNow - 12_000).toISOString(), idleUnloadAt: new Date(appNow + 250_400).toISOString() }];
      res.writeHead(200, { "content-type": "application/json", date }).end(JSON.stringify({ result: { data: rows } }));
    });
    const res = await status(url);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    const line = res.stdout.split("\n")[1];
    // This machine's clock would read "0s ago" (a last use 78 s in its future) and "unloads in 5m 40s".
    expect(line).toMatch(/^warm\s+local\s+8081\s+ready\s+on-demand\s+4242\s+1m00s\s+0\s+-\s+0\s+12s ago\s+unloads in 4m 10s$/);
  });
});

describe("synapse status against the app's router and gateway", () => {
  let fx: CallerRuntime;
  let adapter: FleetAdapter;
  let gateway: Gateway;
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    fx = await callerRuntime("synapse-cli-status-", "cli-status");
    const { runtime } = fx;
    // As the app's front server (gateway/front.ts): the gateway over the runtime's fleet, the tRPC router beside it.
    adapter = createFleetAdapter({ db: runtime.db, fleet: runtime.fleet, events: runtime.events, links: runtime.links });
    gateway = createGateway({ fleet: adapter, keys: createKeyStore(runtime.db), guard: { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined }, idleSweepMs: 100 });
    const trpc = createHTTPHandler({ router: appRouter, basePath: "/api/trpc/", createContext: () => createContextInner({ runtime }) });
    server = http.createServer((req, res) => {
      if (gateway.handles(req.url ?? "/")) void gateway.handle(req, res);
      else trpc(req, res);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    if (server) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
    gateway?.close();
    adapter?.close();
    await fx?.dispose();
  });

  it("shows which models are on demand, their requests in flight, last use and idle unload; nothing of the kind for an always model", async () => {
    const file = await tinyModel(fx.dirs.modelRoot, "cli-status.gguf");
    const [p1, p2, p3] = await freePorts(3);
    await fx.caller.models.create({ name: "steady", enabled: true, filePath: file, port: p1! });
    await fx.caller.models.create({ name: "warm", enabled: true, filePath: file, port: p2!, loadPolicy: "on-demand", idleTimeoutMs: 600_000 });
    await fx.caller.models.create({ name: "lazy", enabled: true, filePath: file, port: p3!, loadPolicy: "on-demand", idleTimeoutMs: 600_000 });
    expect((await fx.caller.servers.startAll({ wait: true })).map((r) => [r.name, r.state])).toEqual([["steady", "ready"]]);
    // One request loads "warm"; it is answered, and its idle countdown starts.
    const answer = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "warm", messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: "root ::= [a-z]+" }),
      signal: AbortSignal.timeout(90_000),
    });
    expect(answer.status).toBe(200);
    await answer.arrayBuffer();
    await waitFor("warm's idle countdown", async () => (await fx.caller.servers.status()).find((s) => s.name === "warm" && s.idleUnloadAt !== null), 10_000, 50);

    const res = await status(url);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    const lines = res.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^MODEL\s+HOST\s+PORT\s+STATE\s+POLICY\s+PID\s+UPTIME\s+RESTARTS\s+CAUSE\s+IN FLIGHT\s+LAST USED\s+IDLE UNLOAD\s+ERROR$/);
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? `(no line for ${name} in:\n${res.stdout})`;
    // By name: lazy, steady, warm. Times are relative to now: the request ended seconds ago, the unload is its 10 minutes after that.
    expect(row("warm")).toMatch(/^warm\s+\S+\s+\d+\s+ready\s+on-demand\s+\d+\s+\S+\s+0\s+-\s+0\s+\d+s ago\s+unloads in (9m [0-5]\ds|10m 00s)$/);
    expect(row("lazy")).toMatch(/^lazy\s+\S+\s+\d+\s+idle\s+on-demand\s+-\s+-\s+0\s+-\s+0\s+-\s+idle \(loads on first request\)$/);
    expect(row("steady")).toMatch(/^steady\s+\S+\s+\d+\s+ready\s+always\s+\d+\s+\S+\s+0\s+-\s+0\s+-\s+-$/);
    expect(row("steady")).not.toMatch(/unloads|loads on first request|on-demand/);
  });
});
