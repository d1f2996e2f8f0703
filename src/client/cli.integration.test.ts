/**
 * The `synapse` CLI over real loopback sockets.
 *
 * `status` against the app's own tRPC router and gateway on one loopback server, over a real runtime (SQLite
 * file, local agent, real llama-server, tiny models): each model's load policy, requests in flight, last use
 * and idle unload as a user reads them.
 *
 * The per-model commands over the same router (start, stop, restart and logs by registry name or alias; a
 * name no model has), checked against what a user would check: the server's /health on its port, the status
 * view's state and cause, the log file's lines, and the registry, servers and event log untouched.
 *
 * What it says when the call fails: no app at SYNAPSE_URL (the connection is refused), the app's guard
 * refusing a missing token (its 401 body, made by guard.ts's own checkRequest as src/proxy.ts sends it), and
 * something at SYNAPSE_URL that is not the app (a plain web server's HTML page).
 */
import { spawn } from "node:child_process";
import { appendFile, readFile } from "node:fs/promises";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePorts } from "../../host-agent/test/harness/ports";
import { writeTinyModel } from "../../host-agent/src/gguf/tiny-model";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { appRouter } from "~/server/api/root";
import { createContextInner } from "~/server/api/trpc";
import { createFleetAdapter, type FleetAdapter } from "~/server/gateway/fleet-adapter";
import { createGateway, type Gateway } from "~/server/gateway/gateway";
import { createKeyStore } from "~/server/gateway/key-store";
import { checkRequest } from "~/server/http/guard";
import { callerRuntime, type CallerRuntime } from "~/server/services/fleet/testing/caller-runtime";
import { PORT_HELD_ADVICE } from "~/server/services/fleet/start-outcome";
import { ENABLE_ADVICE } from "~/server/gateway/model-disabled";
import { waitFor } from "~/server/services/fleet/testing/fixture";
import { main } from "./cli";

const ROOT = path.resolve(import.meta.dirname, "..", "..");

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

/** Runs the CLI (its main, in this process) with SYNAPSE_URL set to `url`. */
async function cli(url: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const before = process.env.SYNAPSE_URL;
  process.env.SYNAPSE_URL = url;
  let stdout = "";
  let stderr = "";
  try {
    const code = await main(argv, (s) => (stdout += s), (s) => (stderr += s));
    return { code, stdout, stderr };
  } finally {
    if (before === undefined) delete process.env.SYNAPSE_URL;
    else process.env.SYNAPSE_URL = before;
  }
}

function status(url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return cli(url, ["status"]);
}

/** As the app's front server (gateway/front.ts): the gateway over the runtime's fleet, the tRPC router beside it, on one loopback port. */
/** `apiToken`: the app's guard asks for it (Authorization: Bearer …) on every request, as the app beyond loopback does. */
/** `port`: listen there (default: one the OS chooses). */
async function serveApp(fx: CallerRuntime, options: { apiToken?: string; port?: number } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const { runtime } = fx;
  const adapter: FleetAdapter = createFleetAdapter({ db: runtime.db, fleet: runtime.fleet, events: runtime.events, links: runtime.links });
  const gateway: Gateway = createGateway({ fleet: adapter, keys: createKeyStore(runtime.db), guard: { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined }, idleSweepMs: 100 });
  const trpc = createHTTPHandler({ router: appRouter, basePath: "/api/trpc/", createContext: () => createContextInner({ runtime }) });
  const server = http.createServer((req, res) => {
    if (options.apiToken) {
      const verdict = checkRequest({ method: req.method ?? "GET", pathname: new URL(req.url ?? "/", "http://x").pathname, headers: { get: (n) => (req.headers[n.toLowerCase()] as string | undefined) ?? null } }, { allowedHosts: [], listenHost: "127.0.0.1", apiToken: options.apiToken });
      if (!verdict.ok) return void res.writeHead(verdict.status, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: verdict.code, message: verdict.message } }));
    }
    if (gateway.handles(req.url ?? "/")) void gateway.handle(req, res);
    else trpc(req, res);
  });
  await new Promise<void>((r) => server.listen(options.port ?? 0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      gateway.close();
      adapter.close();
    },
  };
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
  let app: Awaited<ReturnType<typeof serveApp>> | undefined;
  let url: string;

  beforeAll(async () => {
    fx = await callerRuntime("synapse-cli-status-", "cli-status");
    app = await serveApp(fx);
    url = app.url;
  });
  afterAll(async () => {
    await app?.close();
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
    expect(lines[0]).toMatch(/^MODEL\s+HOST\s+PORT\s+STATE\s+POLICY\s+PID\s+UPTIME\s+RESTARTS\s+CAUSE\s+IN FLIGHT\s+LAST USED\s+IDLE UNLOAD\s+LAST ERROR$/);
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? `(no line for ${name} in:\n${res.stdout})`;
    // By name: lazy, steady, warm. Times are relative to now: the request ended seconds ago, the unload is its 10 minutes after that.
    expect(row("warm")).toMatch(/^warm\s+\S+\s+\d+\s+ready\s+on-demand\s+\d+\s+\S+\s+0\s+-\s+0\s+\d+s ago\s+unloads in (9m [0-5]\ds|10m 00s)$/);
    expect(row("lazy")).toMatch(/^lazy\s+\S+\s+\d+\s+idle\s+on-demand\s+-\s+-\s+0\s+-\s+0\s+-\s+idle \(loads on first request\)$/);
    expect(row("steady")).toMatch(/^steady\s+\S+\s+\d+\s+ready\s+always\s+\d+\s+\S+\s+0\s+-\s+0\s+-\s+-$/);
    expect(row("steady")).not.toMatch(/unloads|loads on first request|on-demand/);
  });

  // A value llama-server refuses on its own (--pooling bogus) is refused at save now; a combination it refuses
  // while loading (a quantized V cache with flash attention off) still reaches it.
  it("a start llama-server refuses (a quantized V cache with flash attention off): LAST ERROR and the gateway's answer carry llama-server's own line, not only its exit code", async () => {
    const file = await tinyModel(fx.dirs.modelRoot, "cli-status-broken.gguf");
    const [port] = await freePorts(1);
    const m = await fx.caller.models.create({ name: "broken", enabled: true, filePath: file, port: port!, flashAttn: "off", extraFlags: [{ flag: "--cache-type-v", value: "q4_0" }] });
    const started = await fx.caller.servers.start({ id: m.id });
    expect(started.state).toBe("failed");
    // What llama-server itself printed to this run's log.
    const said = "llama_init_from_model: quantized V cache requires flash_attn to be enabled";
    expect(started.error).toContain(said);

    const res = await status(url);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    const line = res.stdout.split("\n").find((l) => l.startsWith("broken ")) ?? `(no line for broken in:\n${res.stdout})`;
    expect(line).toMatch(/\bexited with code 1 while loading; the log says: llama_init_from_model: quantized V cache requires flash_attn to be enabled$/);
    // One line: none of the log tail's other lines (its run header, llama-server's usage text).
    expect(res.stdout).not.toMatch(/=== synapse host-agent|usage:|failed to create context/);

    const answer = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "broken", messages: [{ role: "user", content: "hi" }], max_tokens: 4 }),
      signal: AbortSignal.timeout(30_000),
    });
    expect(answer.status).toBe(503);
    expect(((await answer.json()) as { error: { message: string } }).error.message).toContain(said);
    await fx.caller.servers.stop({ id: m.id });
  });
});

describe("synapse start, stop, restart and logs of one model, against the app's router", () => {
  let fx: CallerRuntime;
  let app: Awaited<ReturnType<typeof serveApp>> | undefined;
  let url: string;
  let alphaPort: number;
  let bravoPort: number;
  let holder: net.Server | null = null;
  const ALIAS = "team/alpha chat";

  beforeAll(async () => {
    fx = await callerRuntime("synapse-cli-model-", "cli-model");
    app = await serveApp(fx);
    url = app.url;
    const file = await tinyModel(fx.dirs.modelRoot, "cli-model.gguf");
    [alphaPort, bravoPort] = (await freePorts(2)) as [number, number];
    await fx.caller.models.create({ name: "alpha", alias: ALIAS, enabled: true, filePath: file, port: alphaPort });
    // About 21 MiB of weights (as the start-all --force e2e test): more than the small budget the refusal test sets.
    const big = path.join(fx.dirs.modelRoot, "cli-big.gguf");
    await writeTinyModel(big, { embedding: 512, layers: 2, heads: 4, feedForward: 1024, contextLength: 4096 });
    await fx.caller.models.create({ name: "bravo", enabled: true, filePath: big, port: bravoPort, ctxSize: 256 });
  });
  afterAll(async () => {
    await new Promise<void>((r) => (holder ? holder.close(() => r()) : r()));
    await app?.close();
    await fx?.dispose();
  });

  const view = async (name: string) => (await fx.caller.servers.status()).find((s) => s.name === name)!;
  /** The status of GET /health on the model's own port (llama-server's), or the connection's error. */
  const health = (port: number) =>
    fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(10_000) }).then(
      (r) => r.status,
      (e: unknown) => `no answer: ${(e as Error).cause instanceof Error ? ((e as Error).cause as NodeJS.ErrnoException).code : String(e)}`,
    );

  it("start by registry name: the model serves (ready, /health answers on its port), and the line says state, port and pid", async () => {
    const res = await cli(url, ["start", "alpha"]);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    const v = await view("alpha");
    expect([v.state, v.desired]).toEqual(["ready", "running"]);
    expect(res.stdout.split("\n")).toEqual([expect.stringMatching(/^MODEL\s+HOST\s+PORT\s+STATE\s+PID$/), expect.stringMatching(new RegExp(`^alpha\\s+local\\s+${alphaPort}\\s+ready\\s+${v.pid}$`)), ""]);
    expect(await health(alphaPort)).toBe(200);
  });

  it("stop by alias: stopped with cause requested, its port no longer answers", async () => {
    const res = await cli(url, ["stop", ALIAS]);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    // Its row only: it was running, so nothing says "was not running".
    expect(res.stdout.split("\n")).toEqual([expect.stringMatching(/^MODEL\s/), expect.stringMatching(new RegExp(`^alpha\\s+local\\s+${alphaPort}\\s+stopped\\s+-$`)), ""]);
    const v = await view("alpha");
    expect([v.state, v.desired, v.cause, v.pid]).toEqual(["stopped", "stopped", "requested", null]);
    expect(await health(alphaPort)).toBe("no answer: ECONNREFUSED");
  });

  it("stop again, and stop-all with nothing running: each says nothing was running, once", async () => {
    const res = await cli(url, ["stop", "alpha"]);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    expect(res.stdout.split("\n").slice(1)).toEqual([expect.stringMatching(new RegExp(`^alpha\\s+local\\s+${alphaPort}\\s+stopped\\s+-$`)), "alpha was not running: nothing was stopped", ""]);
    expect(await cli(url, ["stop-all"])).toEqual({ code: 0, stdout: "nothing was running\n", stderr: "" });
  });

  it("start by alias (--json: servers.start's result), then restart by name: a new process that serves", async () => {
    const res = await cli(url, ["start", ALIAS, "--json"]);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    const result = JSON.parse(res.stdout) as { name: string; state: string; port: number; pid: number; error: string | null };
    expect(result).toMatchObject({ name: "alpha", state: "ready", port: alphaPort, error: null });
    expect((await view("alpha")).pid).toBe(result.pid);
    expect(await health(alphaPort)).toBe(200);

    const again = await cli(url, ["restart", "alpha"]);
    expect([again.code, again.stderr]).toEqual([0, ""]);
    const v = await view("alpha");
    expect(v.state).toBe("ready");
    expect(v.pid).not.toBe(result.pid);
    expect(again.stdout.split("\n")[1]).toMatch(new RegExp(`^alpha\\s+local\\s+${alphaPort}\\s+ready\\s+${v.pid}$`));
    expect(await health(alphaPort)).toBe(200);
  });

  it("logs prints the lines the server wrote to its log, one per line and nothing else; --lines N the last N", async () => {
    const { logPath } = await fx.caller.servers.logs({ id: (await view("alpha")).modelId, lines: 1 });
    expect(logPath).not.toBeNull();
    const logLines = async () => (await readFile(logPath!, "utf8")).split("\n").filter((l) => l !== "");
    /** Where `run` stands in `lines` as consecutive lines (the server may write more after the CLI read it), or -1. */
    const runAt = (lines: string[], run: string[]) => lines.findIndex((_, i) => run.every((l, j) => lines[i + j] === l));

    const before = await logLines();
    const res = await cli(url, ["logs", "alpha"]);
    const after = await logLines();
    expect([res.code, res.stderr]).toEqual([0, ""]);
    const printed = res.stdout.split("\n");
    expect(printed.pop()).toBe("");
    // Less than the default 500 lines: the whole log, every line the server had written, in order, nothing added.
    expect(after.length).toBeLessThan(500);
    expect(printed.length).toBeGreaterThanOrEqual(before.length);
    expect(printed).toEqual(after.slice(0, printed.length));
    expect(printed.some((l) => /listening/i.test(l)), printed.join("\n")).toBe(true);

    const three = await cli(url, ["logs", ALIAS, "--lines", "3"]);
    const later = await logLines();
    expect([three.code, three.stderr]).toEqual([0, ""]);
    const last3 = three.stdout.split("\n").slice(0, -1);
    expect(last3).toHaveLength(3);
    // The last three when it read them: at or after the end of what was written before.
    expect(runAt(later, last3)).toBeGreaterThanOrEqual(after.length - 3);
  });

  it("logs --grep prints the lines of the whole log that contain the text (case ignored), and on stderr how many", async () => {
    const { logPath } = await fx.caller.servers.logs({ id: (await view("alpha")).modelId, lines: 1 });
    // Every run of alpha so far (three starts: by name, by alias, the restart) began with its header.
    const headers = (await readFile(logPath!, "utf8")).split("\n").filter((l) => l.startsWith("=== synapse host-agent: starting alpha at "));
    expect(headers).toHaveLength(3);
    const all = await cli(url, ["logs", "alpha", "--grep", "Host-Agent: Starting ALPHA"]);
    expect(all).toEqual({ code: 0, stdout: headers.map((l) => `${l}\n`).join(""), stderr: `synapse: 3 lines of alpha's log contain "Host-Agent: Starting ALPHA"\n` });
    const last = await cli(url, ["logs", ALIAS, "--grep=host-agent: starting alpha", "--lines", "1"]);
    expect(last).toEqual({ code: 0, stdout: `${headers[2]}\n`, stderr: `synapse: 3 lines of alpha's log contain "host-agent: starting alpha" (the last 1 shown; --lines up to 5000)\n` });
    expect(await cli(url, ["logs", "alpha", "--grep", "no line says this"])).toEqual({ code: 0, stdout: "", stderr: `synapse: 0 lines of alpha's log contain "no line says this"\n` });
    const json = JSON.parse((await cli(url, ["logs", "alpha", "--grep", "starting alpha", "--json"])).stdout) as { lines: string[]; search: { matches: number; searchedAll: boolean; note: string | null } };
    expect(json.lines).toEqual(headers);
    expect(json.search).toMatchObject({ matches: 3, searchedAll: true, note: null });
    const bad = await cli(url, ["logs", "alpha", "--grep"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--grep needs the text to look for: --grep TEXT (case is ignored)");
  });

  it("logs through a pipe prints every line, more than a pipe holds at once (as `| grep` reads it), and exits 0", async () => {
    const { logPath } = await fx.caller.servers.logs({ id: (await view("alpha")).modelId, lines: 1 });
    // 2000 lines of 120 bytes: 240 KB, past a pipe's 64 KiB.
    const added = Array.from({ length: 2000 }, (_, i) => `piped ${String(i).padStart(6, "0")} ${"y".repeat(106)}`);
    await appendFile(logPath!, `${added.join("\n")}\n`);
    // `synapse logs … | (sleep 1; cat)`: a reader that comes late (a pager, a busy grep), so the pipe fills and
    // the CLI must wait for it rather than exit with the rest unwritten. The reader is a process of its own.
    const reader = spawn(process.execPath, ["-e", "setTimeout(() => process.stdin.pipe(process.stdout), 1000)"], { stdio: ["pipe", "pipe", "inherit"] });
    let stdout = "";
    reader.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    const readerDone = new Promise<void>((resolve) => reader.once("close", () => resolve()));
    const child = spawn(path.join(ROOT, "node_modules", ".bin", "tsx"), ["src/client/cli.ts", "logs", "alpha", "--lines", "2000"], { cwd: ROOT, env: { ...process.env, SYNAPSE_URL: url }, stdio: ["ignore", reader.stdin, "pipe"] });
    reader.stdin.destroy(); // the CLI holds the pipe's write end now: the reader ends when the CLI does
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the CLI did not exit within 60 s")), 60_000);
      child.once("close", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    await readerDone;
    expect([code, stderr]).toEqual([0, ""]);
    const printed = stdout.split("\n").slice(0, -1);
    expect(printed).toHaveLength(2000);
    // The last 2000 when it read them: the ones added, unless the server wrote more since.
    expect(printed.filter((l) => l.startsWith("piped ")).length).toBeGreaterThan(1900);
    expect(Buffer.byteLength(stdout)).toBeGreaterThan(200_000);
  });

  it("logs --follow prints the tail, then each line as it is written, once, and the state changes on stderr; Ctrl-C ends it with exit 0", async () => {
    const { logPath } = await fx.caller.servers.logs({ id: (await view("alpha")).modelId, lines: 1 });
    const child = spawn(path.join(ROOT, "node_modules", ".bin", "tsx"), ["src/client/cli.ts", "logs", "alpha", "--follow", "--lines", "3"], { cwd: ROOT, env: { ...process.env, SYNAPSE_URL: url }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
    try {
      // The tail first: the last 3 lines as the file had them.
      await waitFor("the tail", async () => stdout.split("\n").length > 3, 30_000);
      const tail = stdout.split("\n").slice(0, 3);
      const file = (await readFile(logPath!, "utf8")).split("\n").filter((l) => l !== "");
      expect(file.slice(file.indexOf(tail[0]!), file.indexOf(tail[0]!) + 3)).toEqual(tail);
      // Lines the server writes from now on come as they are written, in order, once each.
      const written = Array.from({ length: 50 }, (_, i) => `followed ${i}`);
      for (const l of written) await appendFile(logPath!, `${l}\n`);
      await waitFor("the followed lines", async () => stdout.includes("followed 49\n"), 30_000);
      expect(stdout.split("\n").filter((l) => l.startsWith("followed "))).toEqual(written);
      // A restart: its state changes on stderr, the new run's lines on stdout (its header among them).
      await fx.caller.servers.restart({ id: (await view("alpha")).modelId });
      await waitFor("the new run's header", async () => /=== synapse host-agent: starting alpha at /.test(stdout.slice(stdout.indexOf("followed 49"))), 30_000);
      await waitFor("the state changes", async () => /synapse: alpha ready/.test(stderr), 30_000);
      expect(stderr).toMatch(/synapse: alpha stopping/);
      expect(stdout.slice(stdout.indexOf("followed 49"))).toMatch(/=== synapse host-agent: ended alpha at \S+: stopped, cause restart: stopped to restart ===/);
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);
  });

  it("logs --follow --grep: the last matches of the whole log, then only the new lines that match", async () => {
    const { logPath } = await fx.caller.servers.logs({ id: (await view("alpha")).modelId, lines: 1 });
    const stop = new AbortController();
    let stdout = "";
    const before = process.env.SYNAPSE_URL;
    process.env.SYNAPSE_URL = url;
    const run = main(["logs", "alpha", "-f", "--grep", "KEEP me"], (s) => (stdout += s), () => undefined, { signal: stop.signal });
    try {
      // Until a probe line comes back, the stream is not open yet: a probe a second.
      let probes = 0;
      await waitFor("the stream", async () => {
        if (stdout.includes("keep me probe")) return true;
        await appendFile(logPath!, `keep me probe ${probes++}\n`);
        await new Promise((r) => setTimeout(r, 1000));
        return stdout.includes("keep me probe");
      }, 30_000);
      await waitFor("every probe", async () => stdout.includes(`keep me probe ${probes - 1}\n`), 10_000);
      const start = stdout;
      for (const l of ["drop this", "keep me 1", "drop that", "KEEP ME 2"]) await appendFile(logPath!, `${l}\n`);
      await waitFor("the matching lines", async () => stdout.includes("KEEP ME 2"), 30_000);
      expect(stdout.slice(start.length)).toBe("keep me 1\nKEEP ME 2\n");
    } finally {
      stop.abort();
      if (before === undefined) delete process.env.SYNAPSE_URL;
      else process.env.SYNAPSE_URL = before;
    }
    expect(await run).toBe(0);
  });

  it("logs --follow says on stderr when the app's stream is lost and when it is back, and goes on with the lines written after", async () => {
    let app = await serveApp(fx);
    const port = Number(new URL(app.url).port);
    const { logPath } = await fx.caller.servers.logs({ id: (await view("alpha")).modelId, lines: 1 });
    const before = process.env.SYNAPSE_URL;
    process.env.SYNAPSE_URL = app.url;
    const stop = new AbortController();
    let stdout = "";
    let stderr = "";
    try {
      const run = main(["logs", "alpha", "--follow", "--lines", "1"], (s) => (stdout += s), (s) => (stderr += s), { signal: stop.signal });
      let n = 0;
      const written = async (prefix: string) =>
        waitFor(`a line "${prefix}…" followed`, async () => {
          await appendFile(logPath!, `${prefix} ${n++}\n`);
          await new Promise((r) => setTimeout(r, 300));
          return stdout.includes(`${prefix} `);
        }, 30_000);
      await written("before the loss");
      await app.close(); // the app goes away (a restart of it)
      await waitFor("the loss said", async () => /^synapse: lost the app's event stream \(.+\); reconnecting…$/m.test(stderr), 30_000);
      // fetch's words, not the JavaScript error's name ("TypeError: terminated: other side closed").
      expect(stderr).not.toMatch(/event stream \(\w*Error: /);
      await appendFile(logPath!, "written while the stream was lost\n");
      await new Promise((r) => setTimeout(r, 1000));
      app = await serveApp(fx, { port });
      await waitFor("the return said", async () => /^synapse: the app's event stream is back \(if the app restarted meanwhile, lines written while it was down are not shown here: `synapse logs alpha` reads them from the log\)$/m.test(stderr), 30_000);
      await written("after the return");
      expect(stderr.match(/lost the app's event stream/g)).toHaveLength(1);
      expect(stdout).toContain("written while the stream was lost\n");
      stop.abort();
      expect(await run).toBe(0);
    } finally {
      if (before === undefined) delete process.env.SYNAPSE_URL;
      else process.env.SYNAPSE_URL = before;
      stop.abort();
      await app.close();
    }
  });

  it("logs --follow sends SYNAPSE_API_TOKEN on its stream too: an app that asks for the token follows with it, and refuses without it (exit 3)", async () => {
    const TOKEN = "a-token-of-sixteen-chars";
    const guarded = await serveApp(fx, { apiToken: TOKEN });
    const { logPath } = await fx.caller.servers.logs({ id: (await view("alpha")).modelId, lines: 1 });
    const before = { url: process.env.SYNAPSE_URL, token: process.env.SYNAPSE_API_TOKEN };
    process.env.SYNAPSE_URL = guarded.url;
    try {
      let errText = "";
      expect(await main(["logs", "alpha", "--follow"], () => undefined, (s) => (errText += s))).toBe(3);
      expect(errText).toContain("answered 401: missing or wrong API token");
      process.env.SYNAPSE_API_TOKEN = TOKEN;
      const stop = new AbortController();
      let stdout = "";
      const run = main(["logs", "alpha", "--follow", "--lines", "1"], (s) => (stdout += s), () => undefined, { signal: stop.signal });
      let n = 0;
      await waitFor("a line written while it follows", async () => {
        await appendFile(logPath!, `with the token ${n++}\n`);
        await new Promise((r) => setTimeout(r, 500));
        return stdout.includes("with the token ");
      }, 30_000);
      stop.abort();
      expect(await run).toBe(0);
    } finally {
      for (const [k, v] of [["SYNAPSE_URL", before.url], ["SYNAPSE_API_TOKEN", before.token]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await guarded.close();
    }
  });

  it("a name no model has: exit 2 naming the models, and nothing changed (registry, servers, event log)", async () => {
    const before = { models: await fx.caller.models.list(), servers: (await fx.caller.servers.status()).map((s) => [s.name, s.state, s.desired, s.pid, s.cause]), last: (await fx.caller.servers.history({ limit: 1 })).events[0]?.id };
    for (const argv of [["start", "alhpa"], ["stop", "alhpa"], ["restart", "alhpa", "--no-wait"], ["logs", "alhpa"], ["start", "team/alpha"]]) {
      const res = await cli(url, argv);
      expect([res.code, res.stdout, res.stderr], argv.join(" ")).toEqual([2, "", `synapse: no model named ${JSON.stringify(argv[1])}; models: alpha, bravo\n`]);
    }
    expect(await fx.caller.models.list()).toEqual(before.models);
    expect((await fx.caller.servers.status()).map((s) => [s.name, s.state, s.desired, s.pid, s.cause])).toEqual(before.servers);
    expect((await fx.caller.servers.history({ limit: 1 })).events[0]?.id).toBe(before.last);
  });

  it("a start the memory plan refuses: exit 1, the refusal whole with its numbers; nothing started", async () => {
    await fx.runtime.db.host.updateMany({ where: { name: "local" }, data: { memoryBudgetMiB: 10 } });
    try {
      const res = await cli(url, ["start", "bravo"]);
      expect([res.code, res.stderr]).toEqual([1, ""]);
      const lines = res.stdout.trimEnd().split("\n");
      expect(lines[1]).toMatch(new RegExp(`^bravo\\s+local\\s+${bravoPort}\\s+stopped\\s+-$`));
      expect(lines[2]).toMatch(/^not started \(memory\): bravo needs 2\d\.\d MiB \(weights 2\d\.\d, KV cache \d+\.\d, compute \d+\.\d\); local has \d+\.\d of 10\.0 MiB left/);
      expect(lines).toHaveLength(3);
      expect((await view("bravo")).state).toBe("stopped");
      expect(await health(bravoPort)).toBe("no answer: ECONNREFUSED");
      // Never run, so no log: the app's answer says so (on stderr; stdout stays empty for a pipe).
      const logs = await cli(url, ["logs", "bravo"]);
      expect([logs.code, logs.stdout]).toEqual([3, ""]);
      expect(logs.stderr).toMatch(new RegExp(`^synapse: ${url} answered 404: .*no log for server bravo \\(.*bravo.*does not exist\\)\\n$`));
    } finally {
      await fx.runtime.db.host.updateMany({ where: { name: "local" }, data: { memoryBudgetMiB: null } });
    }
  });

  it("a start whose port another program holds: exit 1, the holder and what to change", async () => {
    await cli(url, ["stop", "alpha"]);
    holder = net.createServer();
    await new Promise<void>((r) => holder!.listen(alphaPort, "127.0.0.1", r));
    const res = await cli(url, ["start", "alpha"]);
    expect([res.code, res.stderr]).toEqual([1, ""]);
    const lines = res.stdout.trimEnd().split("\n");
    expect(lines[1]).toMatch(new RegExp(`^alpha\\s+local\\s+${alphaPort}\\s+failed\\s+-$`));
    expect(lines.slice(2)).toEqual([`not started: cannot start alpha: port ${alphaPort} is held by pid ${process.pid} (node); ${PORT_HELD_ADVICE}`]);
  });

  it("start of a disabled model: it serves on its port, and the answer says the gateway refuses it (409) until it is enabled, and how to enable it", async () => {
    const [port] = (await freePorts(1)) as [number];
    const m = await fx.caller.models.create({ name: "charlie", enabled: false, filePath: await tinyModel(fx.dirs.modelRoot, "cli-disabled.gguf"), port });
    const ask = () =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "charlie", messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: "root ::= [a-z]+" }),
        signal: AbortSignal.timeout(30_000),
      });
    const note = `note: charlie is disabled: it was started, but the gateway (/v1) refuses its requests (409 model_disabled) until it is enabled; ${ENABLE_ADVICE}`;

    const res = await cli(url, ["start", "charlie"]);
    expect([res.code, res.stderr]).toEqual([0, ""]);
    const v = await view("charlie");
    expect([v.state, v.enabled]).toEqual(["ready", false]);
    // The row reads as status reads it, and the note says what a user would otherwise learn from a 409.
    expect(res.stdout.split("\n")).toEqual([expect.stringMatching(/^MODEL\s/), expect.stringMatching(new RegExp(`^charlie\\s+local\\s+${port}\\s+ready \\(disabled\\)\\s+${v.pid}$`)), note, ""]);
    expect(await health(port)).toBe(200);
    const refused = await ask();
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { code: string; message: string } }).error).toEqual({ code: "model_disabled", message: `model "charlie" is disabled; ${ENABLE_ADVICE} to serve it`, type: "conflict_error", param: null });

    // Started again while it runs: nothing was started, and the note does not say it was (a trial read "was already
    // running: nothing was started", then "it was started, but …").
    const twice = await cli(url, ["start", "charlie"]);
    expect([twice.code, twice.stderr]).toEqual([0, ""]);
    expect(twice.stdout.split("\n").slice(2)).toEqual(["charlie was already running: nothing was started", `note: charlie is disabled: it runs, but the gateway (/v1) refuses its requests (409 model_disabled) until it is enabled; ${ENABLE_ADVICE}`, ""]);

    // servers.restart's result (--json) carries it too, for typed clients.
    const again = await cli(url, ["restart", "charlie", "--json"]);
    expect([again.code, again.stderr]).toEqual([0, ""]);
    expect(JSON.parse(again.stdout)).toMatchObject({ name: "charlie", state: "ready", disabled: { message: note.slice("note: ".length) } });

    // Enabled as the advice says: the gateway serves it, and a start says nothing of it being disabled.
    await fx.caller.models.setEnabled({ id: m.id, enabled: true });
    expect((await ask()).status).toBe(200);
    const enabled = await cli(url, ["start", "charlie", "--json"]);
    expect(JSON.parse(enabled.stdout)).not.toHaveProperty("disabled");
    await fx.caller.servers.stop({ id: m.id });
  });
});
