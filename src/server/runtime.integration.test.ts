/**
 * The runtime end to end on a real database file, the local link and the
 * real llama-server: start-up creates the default host, an app restart
 * re-adopts the servers (same pids, nothing restarted), close stops them
 * (none left, ports free) unless told to leave them running.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../../host-agent/test/harness/fixtures";
import { llamaServerBin } from "../../host-agent/test/harness/llama-server";
import { freePort } from "../../host-agent/test/harness/ports";
import { tinyModel } from "../../host-agent/test/harness/tiny-model";
import { parseEnv, type Env } from "./env";
import { createLogger, type Logger } from "./log/logger";
import { createRuntime, getRuntime, type AppRuntime } from "./runtime";
import { testLogger } from "./services/fleet/testing/db";
import { pidsRunning, portFree, TEST_SETTINGS, testAgentOverrides, waitFor } from "./services/fleet/testing/fixture";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Setup {
  dirs: TestDirs;
  env: (extra?: Record<string, string>) => Env;
  open: (env?: Env, log?: Logger) => Promise<AppRuntime>;
  models: string[];
}

async function setup(): Promise<Setup> {
  const dirs = await testDirs("synapse-runtime-");
  const bin = llamaServerBin();
  const models: string[] = [];
  const opened: AppRuntime[] = [];
  cleanups.push(async () => {
    for (const r of opened) await r.close({ stopServers: true });
    const left = (await Promise.all(models.map((m) => pidsRunning(m)))).flat();
    for (const pid of left) process.kill(pid, "SIGKILL");
    await dirs.cleanup();
    if (left.length) throw new Error(`processes left running: ${left.join(", ")}`);
  });
  const env = (extra: Record<string, string> = {}) =>
    parseEnv({
      DATABASE_URL: `file:${path.join(dirs.root, "data", "synapse.db")}`,
      SYNAPSE_STATE_DIR: dirs.stateDir,
      SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
      LLAMA_SERVER_BIN: bin,
      PORT: "3999",
      SYNAPSE_RECONCILE_INTERVAL_MS: "200",
      LOG_LEVEL: "error",
      ...extra,
    });
  const open = async (e = env(), log = testLogger("runtime")) => {
    const r = await createRuntime({ env: e, log, links: { localAgent: testAgentOverrides(dirs, bin) } });
    opened.push(r);
    return r;
  };
  return { dirs, env, open, models };
}

async function addModels(s: Setup, rt: AppRuntime, names: string[]) {
  const host = await rt.db.host.findUniqueOrThrow({ where: { name: "local" } });
  await rt.db.runtimeSettings.upsert({ where: { id: 1 }, create: TEST_SETTINGS, update: TEST_SETTINGS });
  const out = [];
  for (const name of names) {
    const file = await tinyModel(s.dirs.modelRoot, `${name}.gguf`);
    s.models.push(file);
    out.push(await rt.db.model.create({ data: { name, hostId: host.id, filePath: file, port: await freePort(), enabled: true } }));
  }
  return out;
}

describe("runtime", () => {
  it("creates the default host, re-adopts running servers after a restart (same pids, nothing restarted), and close stops them all", async () => {
    const s = await setup();
    // SYNAPSE_LEAVE_SERVERS_RUNNING: close() without options leaves them running.
    const first = await s.open(s.env({ SYNAPSE_LEAVE_SERVERS_RUNNING: "true" }));
    expect((await first.db.host.findMany()).map((h) => [h.name, h.linkKind])).toEqual([["local", "local"]]);
    expect(first.adoption).toEqual([expect.objectContaining({ host: "local", adopted: [], error: null })]);
    const models = await addModels(s, first, ["alpha", "beta"]);
    const started = await first.fleet.startAll({ wait: true });
    expect(started.map((r) => r.state)).toEqual(["ready", "ready"]);
    const startsBefore = await first.db.event.count({ where: { kind: "state", state: "starting" } });
    await first.close();
    await first.close(); // idempotent
    for (const [i, m] of models.entries()) expect(await pidsRunning(m.filePath)).toEqual([started[i]!.pid]);

    const second = await s.open();
    expect(second.adoption[0]!.adopted.map((a) => [a.name, a.pid])).toEqual(started.map((r) => [r.name, r.pid]));
    const status = await second.fleet.status();
    expect(status.map((v) => [v.name, v.state, v.pid, v.desired])).toEqual(started.map((r) => [r.name, "ready", r.pid, "running"]));
    // A few reconcile ticks later: still the same processes, no new start.
    await new Promise((r) => setTimeout(r, 700));
    for (const [i, m] of models.entries()) expect(await pidsRunning(m.filePath)).toEqual([started[i]!.pid]);
    expect(await second.db.event.count({ where: { kind: "state", state: "starting" } })).toBe(startsBefore);
    const adopted = await second.db.event.findMany({ where: { kind: "action", message: { contains: "re-adopted" } } });
    expect(adopted).toHaveLength(2);

    // Close with the default (stop servers): nothing left, ports free.
    await second.close();
    for (const m of models) {
      expect(await pidsRunning(m.filePath)).toEqual([]);
      expect(await portFree(m.port)).toBe(true);
    }

    // The next start leaves the stopped fleet stopped (as the seed: start-all is a user action).
    const third = await s.open();
    await new Promise((r) => setTimeout(r, 500));
    expect((await third.fleet.status()).map((v) => [v.state, v.desired])).toEqual([
      ["stopped", "stopped"],
      ["stopped", "stopped"],
    ]);
    for (const m of models) expect(await pidsRunning(m.filePath)).toEqual([]);
  });

  it("close's log line counts and names only the servers it stopped, not those already stopped", async () => {
    const s = await setup();
    const lines: { msg: string; count?: number; servers?: string[] }[] = [];
    const rt = await s.open(undefined, createLogger("runtime", "info", (l) => lines.push(JSON.parse(l) as (typeof lines)[number])));
    const [alpha, beta] = await addModels(s, rt, ["alpha", "beta"]);
    await rt.fleet.start(alpha!.id, { wait: true });
    await rt.fleet.start(beta!.id, { wait: true });
    await rt.fleet.stop(beta!.id);
    await rt.close({ stopServers: true });
    expect(lines.filter((l) => l.msg === "stopped the managed servers").map((l) => [l.count, l.servers])).toEqual([[1, ["alpha"]]]);

    // Again with nothing running: none counted ("count 1" for a server stopped long before was the fault).
    lines.length = 0;
    const again = await s.open(undefined, createLogger("runtime", "info", (l) => lines.push(JSON.parse(l) as (typeof lines)[number])));
    await again.close({ stopServers: true });
    expect(lines.filter((l) => l.msg === "stopped the managed servers").map((l) => [l.count, l.servers])).toEqual([[0, []]]);
  });

  it("a server that died while the app was down is restarted at start (desired running)", async () => {
    const s = await setup();
    const first = await s.open();
    const [m] = await addModels(s, first, ["alpha"]);
    const [r] = await first.fleet.startAll({ wait: true });
    await first.close({ stopServers: false });
    process.kill(r!.pid!, "SIGKILL");
    await waitFor("killed", async () => (await pidsRunning(m!.filePath)).length === 0, 5000);

    const second = await s.open();
    const back = await waitFor("restarted after the app came back", async () => {
      const v = (await second.fleet.status())[0]!;
      return v.state === "ready" && v.pid !== r!.pid ? v : null;
    }, 20_000);
    expect(back.restarts).toBe(1);
    expect(await pidsRunning(m!.filePath)).toEqual([back.pid]);
  });

  it("started on a port a local model is registered on, it says so at start: the model, and what to do", async () => {
    const s = await setup();
    const first = await s.open();
    const [m] = await addModels(s, first, ["synapse-tiny"]);
    await first.close({ stopServers: true });

    const lines: { level: string; msg: string; model?: string; port?: number; suggestion?: number | null }[] = [];
    const rt = await s.open(s.env({ PORT: String(m!.port) }), createLogger("runtime", "info", (l) => lines.push(JSON.parse(l) as (typeof lines)[number])));
    const warned = lines.filter((l) => l.level === "warn" && l.model === "synapse-tiny");
    expect(warned.map((l) => [l.msg, l.port, l.suggestion])).toEqual([
      [
        `the app listens on port ${m!.port}, which model synapse-tiny (host local) is registered on: its server cannot start while the app holds the port; give synapse-tiny another port (e.g. ${m!.port + 1}, free in the registry) on its page, or set PORT to another port and start the app again`,
        m!.port,
        m!.port + 1,
      ],
    ]);
    await rt.close({ stopServers: true });

    // On its own port again: not a word.
    lines.length = 0;
    await (await s.open(undefined, createLogger("runtime", "info", (l) => lines.push(JSON.parse(l) as (typeof lines)[number])))).close({ stopServers: true });
    expect(lines.filter((l) => l.model === "synapse-tiny")).toEqual([]);
  });

  it("the local host's agent keeps SYNAPSE_LOG_MAX_BYTES as a standalone agent does: the server's log is rotated at that size", async () => {
    const s = await setup();
    const cap = 65536;
    // No log cap from the test's overrides: the app's environment alone sets it.
    const rt = await createRuntime({ env: s.env({ SYNAPSE_LOG_MAX_BYTES: String(cap) }), log: testLogger("runtime"), links: { localAgent: { logLevel: "warn", healthIntervalMs: 300, exitPollMs: 50 } } });
    cleanups.push(() => rt.close({ stopServers: true }));
    const [model] = await addModels(s, rt, ["chatty"]);
    await rt.db.model.update({ where: { id: model!.id }, data: { serverApiKeyOff: true } });
    expect((await rt.fleet.start(model!.id, { wait: true })).state).toBe("ready");
    const logPath = path.join(s.dirs.stateDir, "logs", "chatty.log");
    // llama-server writes ~10-14 lines a completion: 64 KiB is a few dozen of them (the default cap, 10 MiB, thousands).
    const body = JSON.stringify({ prompt: "hi", n_predict: 4, grammar: "root ::= [a-z]+" });
    const rotated = await waitFor("the log rotated at 64 KiB", async () => {
      const r = await fetch(`http://127.0.0.1:${model!.port}/completion`, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(r.status).toBe(200);
      return (await stat(`${logPath}.1`).catch(() => null))?.size ?? null;
    }, 60_000);
    expect(rotated).toBeGreaterThan(cap);
    expect(rotated).toBeLessThan(cap + 512 * 1024);
  });

  it("getRuntime() makes one runtime per process, shared through globalThis, and a new one after close", async () => {
    const s = await setup();
    const e = s.env();
    for (const [k, v] of Object.entries({ DATABASE_URL: e.DATABASE_URL, SYNAPSE_STATE_DIR: e.SYNAPSE_STATE_DIR!, SYNAPSE_MODEL_ROOTS: e.SYNAPSE_MODEL_ROOTS!, LLAMA_SERVER_BIN: e.LLAMA_SERVER_BIN!, LOG_LEVEL: "error" })) {
      process.env[k] = v;
    }
    const [a, b] = await Promise.all([getRuntime(), getRuntime()]);
    expect(a).toBe(b);
    expect((globalThis as { synapseRuntime?: { runtime?: AppRuntime } }).synapseRuntime?.runtime).toBe(a);
    await a.close({ stopServers: true });
    const c = await getRuntime();
    expect(c).not.toBe(a);
    await c.close({ stopServers: true });
  });
});
