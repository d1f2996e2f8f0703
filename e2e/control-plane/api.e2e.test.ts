/**
 * The control plane over real HTTP, as scripts and the dashboard use it:
 * the production server (`node scripts/start.mjs --no-build`), the local
 * link, the real llama-server and tiny models.
 */
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isLiveProcess as alive } from "../../host-agent/test/harness/fixtures";
import { standIns } from "../../host-agent/test/harness/stand-ins/index";
import { freePorts } from "../../host-agent/test/harness/ports";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { REPO_ROOT } from "../../test/harness/app-build";
import { startApp, type AppServer } from "../../test/harness/app-server";
import { streamLongReply } from "../../test/harness/long-reply";

const run = promisify(execFile);

type ServerRow = { modelId: string; name: string; state: string; pid: number | null; port: number; restarts: number };
type StartAllBody = { ok: boolean; started: number; alreadyRunning?: number; failed: number; results: { name: string; state: string; pid: number | null; error: string | null }[] };


async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

describe("control plane over HTTP (local link, real llama-server)", () => {
  let app: AppServer;
  const names = ["alpha", "bravo", "charlie", "delta"];

  async function status(): Promise<ServerRow[]> {
    const r = await app.json<{ servers: ServerRow[] }>("/api/models/servers/status", { method: "GET" });
    expect(r.status).toBe(200);
    return r.body.servers;
  }

  beforeAll(async () => {
    app = await startApp({ name: "control-plane-api", env: { SYNAPSE_RECONCILE_INTERVAL_MS: "500" } });
    const ports = await freePorts(names.length);
    for (const [i, name] of names.entries()) {
      const file = await tinyModel(app.dirs.modelRoot, `${name}.gguf`);
      const created = await app.trpc.mutation("models.create", { name, filePath: file, port: ports[i], enabled: name !== "delta", ctxSize: 256, threads: 1 });
      expect(created.error, JSON.stringify(created.error)).toBeUndefined();
    }
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("rejects bad input with 400 and field errors, and changes nothing", async () => {
    const before = await app.db().model.count();
    const bad = await app.trpc.mutation("models.create", { name: "bad name!", filePath: "relative.gguf", port: 70_000 });
    expect(bad.status).toBe(400);
    const issues = (bad.error?.data?.issues ?? []) as { path: string; message: string }[];
    expect(issues.map((i) => i.path).sort()).toEqual(expect.arrayContaining(["filePath", "name", "port"]));
    expect(issues.find((i) => i.path === "port")?.message).toMatch(/65535/);
    const clash = await app.trpc.mutation("models.create", { name: "echo", filePath: path.join(app.dirs.modelRoot, "alpha.gguf"), port: app.port });
    expect(clash.status).toBe(400);
    expect(JSON.stringify(clash.error)).toMatch(/port/);
    expect(await app.db().model.count()).toBe(before);
  });

  it("start-all and stop-all with options they do not take in the body: 400 saying which, nothing started", async () => {
    const unknown = await app.json<{ error: { message: string } }>("/api/models/servers/start-all", { method: "POST", body: { forse: true } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/forse/);
    const clash = await app.json<{ error: { message: string } }>("/api/models/servers/start-all?wait=true", { method: "POST", body: { wait: false } });
    expect(clash.status).toBe(400);
    expect(clash.body.error.message).toBe('option "wait" is true in the query and false in the body; give it once');
    const stop = await app.json<{ error: { message: string } }>("/api/models/servers/stop-all", { method: "POST", body: { force: true } });
    expect(stop.status).toBe(400);
    expect(stop.body.error.message).toMatch(/force/);
    expect((await status()).every((s) => s.state === "stopped" && s.pid === null)).toBe(true);
  });

  it("start-all starts the 3 enabled models and leaves the disabled one stopped", async () => {
    const r = await app.json<StartAllBody>("/api/models/servers/start-all", { method: "POST" });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.results.map((x) => x.name).sort()).toEqual(["alpha", "bravo", "charlie"]);
    expect(r.body.results.every((x) => x.state === "ready" && x.pid !== null && alive(x.pid))).toBe(true);
    expect([r.body.started, r.body.alreadyRunning, r.body.failed]).toEqual([3, undefined, 0]);
    const rows = await status();
    expect(Object.fromEntries(rows.map((s) => [s.name, s.state]))).toEqual({ alpha: "ready", bravo: "ready", charlie: "ready", delta: "stopped" });
    // Really serving: each port answers /health.
    for (const row of rows.filter((s) => s.state === "ready")) {
      const health = await fetch(`http://127.0.0.1:${row.port}/health`);
      expect(health.status).toBe(200);
    }
  });

  it("logs of a model that never ran: 404 with the reason, not a 500", async () => {
    const delta = (await status()).find((s) => s.name === "delta")!;
    const r = await app.trpc.query("servers.logs", { id: delta.modelId, lines: 10 });
    expect(r.status).toBe(404);
    expect(r.error?.message).toMatch(/no log/);
  });

  it("a second start-all is a no-op: same pids, and its counts say the 3 were already running", async () => {
    const before = Object.fromEntries((await status()).map((s) => [s.name, s.pid]));
    const r = await app.json<StartAllBody>("/api/models/servers/start-all", { method: "POST" });
    expect(r.status).toBe(200);
    expect([r.body.started, r.body.alreadyRunning, r.body.failed]).toEqual([3, 3, 0]);
    expect(Object.fromEntries((await status()).map((s) => [s.name, s.pid]))).toEqual(before);
  });

  it("POST stop-all, then start-all 0–10 ms later: the last command wins; nothing is taken for a stop on the host", async () => {
    for (const gapMs of [0, 1, 3, 5, 10]) {
      const stopping = app.json<StartAllBody>("/api/models/servers/stop-all", { method: "POST" });
      await new Promise((r) => setTimeout(r, gapMs));
      const started = await app.json<StartAllBody>("/api/models/servers/start-all", { method: "POST" });
      await stopping;
      expect(started.status, `gap ${gapMs} ms: ${JSON.stringify(started.body)}`).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
    }
    // The fault showed about 0.5 s later with no further request; the reconcile tick here is 500 ms.
    await new Promise((r) => setTimeout(r, 1500));
    const hostStops = await app.db().event.findMany({ where: { message: { contains: "stopped on its host" } } });
    expect(hostStops.map((e) => e.message)).toEqual([]);
    const rows = await app.json<{ servers: (ServerRow & { desired: string })[] }>("/api/models/servers/status", { method: "GET" });
    expect(Object.fromEntries(rows.body.servers.map((s) => [s.name, `${s.state}/${s.desired}`]))).toEqual({ alpha: "ready/running", bravo: "ready/running", charlie: "ready/running", delta: "stopped/stopped" });
    for (const s of rows.body.servers.filter((x) => x.state === "ready")) expect(alive(s.pid!)).toBe(true);
  });

  it("kill -9 of a server shows within a second and it is restarted", async () => {
    const victim = (await status()).find((s) => s.name === "bravo")!;
    process.kill(victim.pid!, "SIGKILL");
    const t0 = Date.now();
    const seen = await until("the crash to show in status", async () => (await status()).find((s) => s.name === "bravo" && (s.pid !== victim.pid || s.state !== "ready")), 5_000, 25);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(["exited", "starting", "ready"]).toContain(seen.state);
    const back = await until("bravo to be ready again", async () => (await status()).find((s) => s.name === "bravo" && s.state === "ready" && s.pid !== victim.pid), 30_000, 100);
    expect(back.restarts).toBeGreaterThanOrEqual(1);
    expect(alive(back.pid!)).toBe(true);
  });

  it("the typed CLI reports the same status", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "src/client/cli.ts"), "status"], {
      cwd: REPO_ROOT,
      env: { ...process.env, SYNAPSE_URL: app.url },
      timeout: 60_000,
    });
    for (const name of names) expect(stdout).toContain(name);
    expect(stdout).toMatch(/alpha\s+\S+\s+\d+\s+ready/);
  });

  it("re-adopts running servers after the app dies, with the same pids", async () => {
    const before = Object.fromEntries((await status()).filter((s) => s.state === "ready").map((s) => [s.name, s.pid]));
    expect(Object.keys(before)).toHaveLength(3);
    // Crash the app: no chance to stop anything. Its servers live on.
    const killed = await app.stop("SIGKILL", { keepServers: true });
    expect(killed.signal).toBe("SIGKILL");
    for (const pid of Object.values(before)) expect(alive(pid!)).toBe(true);
    app = await app.restart();
    const after = Object.fromEntries((await status()).filter((s) => s.state === "ready").map((s) => [s.name, s.pid]));
    expect(after).toEqual(before);
  });

  it("SIGTERM stops every server before the app exits; none orphaned", async () => {
    const pids = (await status()).flatMap((s) => (s.pid ? [s.pid] : []));
    expect(pids.length).toBe(3);
    const stopped = await app.stop("SIGTERM");
    expect(stopped).toMatchObject({ code: 0, killed: false, leftovers: [] });
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });
});

describe("Ctrl-C under npm (SIGINT twice, milliseconds apart)", () => {
  it("reads as one Ctrl-C, and still stops every server before exiting", async () => {
    // The second signal must land while the stop is still under way. A real llama-server ends within
    // milliseconds of SIGTERM, sooner than this test can answer the first signal's log line; the
    // scripted stand-in that ignores SIGTERM holds the stop for the grace (1.5 s), then gets SIGKILL.
    const app = await startApp({ name: "control-plane-double-sigint", env: { LLAMA_SERVER_BIN: standIns.ignoresSigterm } });
    try {
      expect((await app.trpc.mutation("settings.update", { stopGraceMs: 1500 })).error).toBeUndefined();
      const file = await tinyModel(app.dirs.modelRoot, "sigint.gguf");
      const [port] = await freePorts(1);
      expect((await app.trpc.mutation("models.create", { name: "sigint", filePath: file, port, enabled: true, ctxSize: 256, threads: 1 })).error).toBeUndefined();
      const started = await app.json<StartAllBody>("/api/models/servers/start-all", { method: "POST" });
      const pid = started.body.results[0]!.pid!;
      expect(alive(pid)).toBe(true);
      // As npm and the terminal deliver them: the second one lands while the first is being handled
      // (sent together, two would coalesce into one pending signal).
      process.kill(app.pid, "SIGINT");
      const first = await app.waitForLog({ component: "app", msg: "shutting down" }, 10_000);
      process.kill(app.pid, "SIGINT");
      // How long after the app took the first one the second was sent (one clock: the same machine).
      const gapMs = Date.now() - Date.parse(first.t!);
      const stopped = await app.stop("SIGINT");
      const repeats = stopped.log.filter((r) => r.msg === "repeated signal ignored; still shutting down (the same signal 3 s or more after the first ends the wait for requests in flight)");
      // npm's copy comes within milliseconds; this test answers the log line well within the app's 500 ms
      // window unless the machine stalls, when the second is a later repeat, logged and still ignored.
      if (gapMs < 400) expect(repeats).toEqual([]);
      else expect(repeats).toHaveLength(1);
      expect(stopped.log.filter((r) => r.msg === "shutting down")).toHaveLength(1);
      // It went on to the end of the stop (SIGKILL after the grace): nothing left behind for the harness to kill.
      expect(stopped).toMatchObject({ code: 0, killed: false, leftovers: [] });
      expect(alive(pid)).toBe(false);
    } finally {
      await app.dispose();
    }
  });
});

describe("shutting down with a gateway request in flight (real llama-server)", () => {
  it("SIGTERM waits for the reply being written; a second SIGTERM 3 s on ends the wait, and every server is still stopped before the app exits", async () => {
    const app = await startApp({ name: "control-plane-drain-cut" });
    try {
      const file = await tinyModel(app.dirs.modelRoot, "long.gguf", { contextLength: 65_536 });
      const [port] = await freePorts(1);
      expect((await app.trpc.mutation("models.create", { name: "long", filePath: file, port, enabled: true, ctxSize: 65_536, threads: 1 })).error).toBeUndefined();
      const started = await app.json<StartAllBody>("/api/models/servers/start-all", { method: "POST" });
      const pid = started.body.results[0]!.pid!;
      // A reply of tens of seconds, read as it streams.
      const reply = await streamLongReply(app, "long");
      expect(reply.status).toBe(200);

      process.kill(app.pid, "SIGTERM");
      const waiting = await app.waitForLog((r) => (r.msg ?? "").startsWith("shutting down: waiting up to 10 s for the gateway's requests in flight to end before stopping the servers"), 10_000);
      expect(waiting.msg).toContain("the same signal again, 3 s or more after the first, stops the wait");
      // The wait goes on (up to 10 s) while the reply does: the server still runs 3.5 s in.
      await new Promise((r) => setTimeout(r, 3500));
      expect(alive(pid)).toBe(true);
      const cutAt = Date.now();
      const stopped = await app.stop("SIGTERM");
      expect(Date.now() - cutAt, "the second signal ended the wait, not the 10 s").toBeLessThan(6000);
      expect(stopped.log.map((r) => r.msg)).toEqual(expect.arrayContaining([
        "second signal: no longer waiting for the gateway's requests in flight; the stop goes on (another signal exits at once, without stopping the remaining servers)",
        "shutting down: the wait for requests in flight was cut short by a second signal; stopping the servers now",
        "stopped the managed servers",
      ]));
      expect(stopped).toMatchObject({ code: 0, killed: false, leftovers: [] });
      expect(alive(pid)).toBe(false);
      // The reply ended told why: its server was stopped while the app shut down.
      expect(await reply.text).toMatch(/"code":"app_shutting_down"/);
    } finally {
      await app.dispose();
    }
  });
});

describe("access control over HTTP", () => {
  let app: AppServer;
  const TOKEN = "e2e-token-0123456789abcdef";

  beforeAll(async () => {
    app = await startApp({ name: "control-plane-access", env: { SYNAPSE_API_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    await app?.dispose();
  });

  it("401 without the token or with a wrong one; 200 with it", async () => {
    expect((await app.fetch("/api/models/servers/status", { auth: false })).status).toBe(401);
    expect((await app.fetch("/api/trpc/models.list", { auth: false })).status).toBe(401);
    expect((await app.fetch("/api/models/servers/status", { auth: false, headers: { authorization: "Bearer wrong-wrong-wrong-wrong" } })).status).toBe(401);
    expect((await app.fetch("/api/models/servers/status", { auth: false, headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    // Health checks need no token.
    expect((await app.fetch("/api/health", { auth: false })).status).toBe(200);
  });

  it("the typed CLI without SYNAPSE_API_TOKEN says the app wants it (was tRPC's 'Unable to transform response from server'); with it, works", async () => {
    const cli = (env: Record<string, string | undefined>) =>
      run(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "src/client/cli.ts"), "status"], { cwd: REPO_ROOT, env: { ...process.env, SYNAPSE_API_TOKEN: undefined, SYNAPSE_URL: app.url, ...env }, timeout: 60_000 }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
      );
    const without = await cli({});
    expect(without.code).toBe(3);
    expect(without.stderr).toBe(`synapse: ${app.url} answered 401: missing or wrong API token: send Authorization: Bearer <SYNAPSE_API_TOKEN>\nsynapse: the app asks for its API token: set SYNAPSE_API_TOKEN to the app's token (SYNAPSE_API_TOKEN=… npm run synapse -- …)\n`);
    const wrong = await cli({ SYNAPSE_API_TOKEN: "not-the-token-of-this-app" });
    expect([wrong.code, wrong.stderr.split("\n")[1]]).toEqual([3, "synapse: SYNAPSE_API_TOKEN is set, and the app refused it: give it the app's own SYNAPSE_API_TOKEN"]);
    const withToken = await cli({ SYNAPSE_API_TOKEN: TOKEN });
    expect(withToken.code).toBe(0);
  });

  it("the session exchange gives the browser a cookie that works, and only the right token gets one", async () => {
    const wrong = await app.fetch("/api/session", { auth: false, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: "nope" }) });
    expect(wrong.status).toBe(401);
    const right = await app.fetch("/api/session", { auth: false, method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: TOKEN }) });
    expect(right.status).toBe(200);
    const cookie = right.headers.get("set-cookie")!.split(";")[0]!;
    expect(cookie).not.toContain(TOKEN);
    expect((await app.fetch("/api/models/servers/status", { auth: false, headers: { cookie } })).status).toBe(200);
  });

  it("403 for a foreign Host, a foreign Origin and Origin: null", async () => {
    const port = app.port;
    // fetch() will not send a custom Host; use a raw request.
    const http = await import("node:http");
    const raw = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port, path: "/api/models/servers/status", method: "GET", headers: { authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.setTimeout(10_000, () => req.destroy(new Error("request timed out")));
        req.end();
      });
    expect(await raw({ host: "rebind.attacker.example" })).toBe(403);
    expect(await raw({ host: `127.0.0.1:${port}`, origin: "https://evil.example" })).toBe(403);
    expect(await raw({ host: `127.0.0.1:${port}`, origin: "null" })).toBe(403);
    expect(await raw({ host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` })).toBe(200);
    // Another port on the same host is another site.
    expect(await raw({ host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port + 1}` })).toBe(403);
  });

  it("415 for a text/plain mutation, and nothing happens", async () => {
    const before = await app.db().event.count();
    const r = await app.fetch("/api/models/servers/start-all", { method: "POST", headers: { "content-type": "text/plain" }, body: "go" });
    expect(r.status).toBe(415);
    const t = await app.fetch("/api/trpc/models.create", { method: "POST", headers: { "content-type": "text/plain" }, body: JSON.stringify({ name: "x" }) });
    expect(t.status).toBe(415);
    expect(await app.db().event.count()).toBe(before);
  });

  it("a tRPC body over the 10 MiB limit is 413 saying so (was a JSON parse error at position 10485760), and nothing is imported", async () => {
    const before = await app.db().model.count();
    const registry = JSON.stringify({ models: { big: { file_path: "/models/big.gguf", family: "x".repeat(11 * 1024 * 1024) } } });
    const r = await app.fetch("/api/trpc/models.import", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ registry }) });
    expect(r.status).toBe(413);
    const body = (await r.json()) as { error: { message: string; data: { code: string } } };
    expect(body.error.data.code).toBe("PAYLOAD_TOO_LARGE");
    expect(body.error.message).toMatch(/more than the limit of 10485760 bytes \(10 MiB\)/);
    expect(await app.db().model.count()).toBe(before);
  });
});
