/**
 * The state faults of issue 13, each as the user meets it, over the local
 * link: the last accepted command wins (a stop the app issued is never a stop
 * on the host), an exit is recorded once, and an error belongs to the attempt
 * that made it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { saysLlamaServerMissing } from "~/components/fleet/llama-missing";
import { fleetFixture, statusOf, pidsRunning, STAND_IN_CRASHES_WHEN_READY, waitFor, type FleetFixture } from "./testing/fixture";
import { standInOlderAgents } from "./testing/stand-in-older-agent";
import type { ServerResult } from "./fleet";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

async function setup(options: Parameters<typeof fleetFixture>[0] = {}): Promise<FleetFixture> {
  fx = await fleetFixture(options);
  return fx;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("the last accepted command wins (real llama-server)", () => {
  it.each([
    ["this checkout's agent", {}],
    ["an agent that sends no cause (stand-in-older-agent)", { viewLinks: standInOlderAgents }],
  ] as const)("stop-all then start-all a few ms later, %s: the model stays ready and wanted; nothing is taken for a stop on the host", async (_, options) => {
    const f = await setup(options);
    const m = await f.addModel("alpha");
    const [first] = await f.fleet.startAll({ wait: true });
    expect(first!.state, first!.error ?? "").toBe("ready");
    for (const gapMs of [1, 5, 10]) {
      const stopping = f.fleet.stopAll();
      await sleep(gapMs);
      const [started] = await f.fleet.startAll({ wait: true });
      await stopping;
      expect(started, `gap ${gapMs} ms`).toMatchObject({ state: "ready" });
      // The fault showed ~0.5 s later, with no further request; a reconcile pass must not stop it either.
      await sleep(800);
      await f.fleet.reconcile(f.host.id);
      expect(await statusOf(f, "alpha"), `gap ${gapMs} ms`).toMatchObject({ state: "ready", desired: "running" });
      expect(await pidsRunning(m.filePath), `gap ${gapMs} ms`).toHaveLength(1);
    }
    const messages = (await f.t.db.event.findMany({ where: { modelId: m.id }, orderBy: { id: "asc" } })).map((e) => e.message).join("\n");
    expect(messages).not.toMatch(/stopped on its host/);
  });

  it("start-all, stop-all, start-all 5 ms apart from stopped: ready and wanted at the end", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    const first = f.fleet.startAll({ wait: true });
    await sleep(5);
    const stop = f.fleet.stopAll();
    await sleep(5);
    const [last] = await f.fleet.startAll({ wait: true });
    await Promise.all([first, stop]);
    expect(last).toMatchObject({ state: "ready" });
    await sleep(800);
    await f.fleet.reconcile(f.host.id);
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "ready", desired: "running" });
    expect(await pidsRunning(m.filePath)).toHaveLength(1);
    const messages = (await f.t.db.event.findMany({ where: { modelId: m.id }, orderBy: { id: "asc" } })).map((e) => e.message).join("\n");
    expect(messages).not.toMatch(/stopped on its host/);
  });

  it("a start (as the gateway's on-demand start: 'wanted running' written beside the spawn) and a stop given 0-10 ms after it: stopped and not wanted at the end, and no reconcile pass starts it again", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    for (const gapMs of [0, 1, 5, 10]) {
      // The gateway lets its waiting requests go on when onReady is called: never for a start a stop overtook.
      const readyHeard: unknown[] = [];
      const starting = f.fleet.start(m.id, { wait: true, onReady: (r) => readyHeard.push(r) });
      if (gapMs > 0) await sleep(gapMs);
      const stopped = await f.fleet.stop(m.id);
      await starting;
      expect(stopped, `gap ${gapMs} ms`).toMatchObject({ state: "stopped" });
      expect(readyHeard, `gap ${gapMs} ms`).toEqual([]);
      await sleep(300);
      await f.fleet.reconcile(f.host.id);
      expect(await statusOf(f, "alpha"), `gap ${gapMs} ms`).toMatchObject({ state: "stopped", desired: "stopped" });
      expect(await pidsRunning(m.filePath), `gap ${gapMs} ms`).toHaveLength(0);
    }
  });
});

describe("an exit is recorded once (stand-in-crashes-when-ready)", () => {
  it("a start's onReady (the gateway's early release) is called once, with the ready server, before the start resolves; its ready state is recorded by then", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    const heard: { result: ServerResult; resolved: boolean }[] = [];
    let resolved = false;
    const started = await f.fleet
      .start(m.id, { wait: true, onReady: (result) => heard.push({ result, resolved }) })
      .finally(() => (resolved = true));
    expect(started, started.error ?? "").toMatchObject({ state: "ready" });
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ resolved: false, result: { modelId: m.id, state: "ready", port: m.port, pid: started.pid, error: null } });
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "ready", desired: "running" });
  });

  it("a failed server's exit is not recorded again by later reconcile passes", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200 } } });
    const crashing = await f.t.db.host.create({ data: { name: "crashy", linkKind: "local", llamaServerBin: STAND_IN_CRASHES_WHEN_READY } });
    const m = await f.addModel("looper", { hostId: crashing.id });
    await f.fleet.startAll({ wait: true });
    const failed = await waitFor("failed after repeated crashes", async () => {
      const s = await statusOf(f, "looper");
      return s.state === "failed" ? s : null;
    }, 30_000);
    expect(failed.lastError).toMatch(/crashed 5 times/);
    const exitsBefore = await f.t.db.event.count({ where: { modelId: m.id, kind: "state", state: "exited" } });

    // Each pass asks the agent, which still reports the last process as exited: the same exit, not a new crash.
    for (let i = 0; i < 4; i++) await f.fleet.reconcile(crashing.id);
    await sleep(300);
    const after = await statusOf(f, "looper");
    expect(after).toMatchObject({ state: "failed", restarts: 4 });
    expect(after.lastError).toMatch(/crashed 5 times/);
    expect(await f.t.db.event.count({ where: { modelId: m.id, kind: "state", state: "exited" } })).toBe(exitsBefore);
    expect(await f.t.db.event.count({ where: { modelId: m.id, kind: "state", state: "failed" } })).toBe(1);
  });
});

describe("an error belongs to the attempt that made it (real llama-server)", () => {
  it("started with no llama-server, then with one: the rows are ready with no last error, and the missing-binary banner is gone", async () => {
    const f = await setup();
    await f.addModel("alpha");
    await f.addModel("beta");
    // No binary configured, none on the search path.
    const bin = f.linkEnv.LLAMA_SERVER_BIN;
    f.linkEnv.LLAMA_SERVER_BIN = undefined;
    const savedPath = process.env.PATH;
    const savedCache = process.env.SYNAPSE_CACHE_DIR;
    process.env.PATH = "/nonexistent";
    // Nor in `npm run llama:build`'s cache, where the agent also looks.
    process.env.SYNAPSE_CACHE_DIR = "/nonexistent/synapse-cache";
    try {
      await f.restart();
      const failed = await f.fleet.startAll({ wait: true });
      expect(failed.map((r) => r.state)).toEqual(["failed", "failed"]);
      const rows = await f.fleet.status();
      expect(rows.every((r) => saysLlamaServerMissing(r.lastError))).toBe(true);
    } finally {
      process.env.PATH = savedPath;
      if (savedCache === undefined) delete process.env.SYNAPSE_CACHE_DIR;
      else process.env.SYNAPSE_CACHE_DIR = savedCache;
    }

    // The user sets LLAMA_SERVER_BIN and restarts the app.
    f.linkEnv.LLAMA_SERVER_BIN = bin;
    await f.restart();
    const started = await f.fleet.startAll({ wait: true });
    expect(started.map((r) => [r.name, r.state, r.error])).toEqual([
      ["alpha", "ready", null],
      ["beta", "ready", null],
    ]);
    const rows = await f.fleet.status();
    expect(rows.map((r) => [r.name, r.state, r.lastError])).toEqual([
      ["alpha", "ready", null],
      ["beta", "ready", null],
    ]);
    // The fleet page's banner shows when any row says the binary is missing.
    expect(rows.some((r) => saysLlamaServerMissing(r.lastError))).toBe(false);
    // The event log keeps the history.
    const errors = await f.t.db.event.findMany({ where: { kind: "error" } });
    expect(errors.some((e) => saysLlamaServerMissing(e.message))).toBe(true);
  });
});
