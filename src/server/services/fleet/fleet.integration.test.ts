/**
 * The fleet over the local link with the real llama-server and tiny models:
 * start-all, crash handling (kill -9, a crash loop), serialized decisions,
 * stop, restart, re-adoption after an app restart.
 */
import { execFile } from "node:child_process";
import net from "node:net";
import { rm } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createHostAgent } from "../../../../host-agent/src/agent";
import { agentOptions } from "../../../../host-agent/test/harness/fixtures";
import { tinyModel } from "../../../../host-agent/test/harness/tiny-model";
import { createLogger } from "~/server/log/logger";
import { fleetFixture, statusOf, pidsRunning, portFree, STAND_IN_CRASHES_WHEN_READY, waitFor, type FleetFixture } from "./testing/fixture";

const REPO = path.resolve(import.meta.dirname, "../../../..");
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

describe("fleet over the local link (real llama-server)", () => {
  it("start-all with 3 enabled and 1 disabled: 3 ready, 1 stopped; each a live process on its port", async () => {
    const f = await setup();
    const models = await Promise.all(["alpha", "beta", "gamma"].map((n) => f.addModel(n)));
    const off = await f.addModel("delta", { enabled: false });

    const results = await f.fleet.startAll({ wait: true });
    expect(results.map((r) => [r.name, r.state, r.error])).toEqual([
      ["alpha", "ready", null],
      ["beta", "ready", null],
      ["gamma", "ready", null],
    ]);
    for (const r of results) {
      expect(r.pid).toEqual(expect.any(Number));
      expect(r.host).toBe("local");
      expect(await pidsRunning(models.find((m) => m.id === r.modelId)!.filePath)).toEqual([r.pid]);
    }

    const status = await f.fleet.status();
    expect(status.map((s) => [s.name, s.state, s.desired, s.enabled])).toEqual([
      ["alpha", "ready", "running", true],
      ["beta", "ready", "running", true],
      ["delta", "stopped", "stopped", false],
      ["gamma", "ready", "running", true],
    ]);
    const alpha = status[0]!;
    expect(alpha).toMatchObject({ host: "local", pid: results[0]!.pid, restarts: 0, lastError: null, link: { kind: "local", state: "connected", error: null } });
    expect(alpha.uptimeMs).toBeGreaterThanOrEqual(0);
    expect(alpha.readyAt).not.toBeNull();
    // A CPU build names no GPU in its log.
    await waitFor("gpu backend recorded", async () => (await statusOf(f, "alpha")).gpuBackend === "CPU");
    expect(await pidsRunning(off.filePath)).toEqual([]);

    // Recorded: the state changes as events, in order per model.
    const events = await f.t.db.event.findMany({ where: { modelId: models[0]!.id, kind: "state" }, orderBy: { id: "asc" } });
    expect(events.map((e) => e.state)).toEqual(["starting", "ready"]);
    // The host's desired set was pushed (what `start-metal-servers` would start).
    const desired = JSON.parse(await import("node:fs/promises").then((fs) => fs.readFile(`${f.dirs.stateDir}/desired.json`, "utf8"))) as { specs: { id: string }[] };
    expect(desired.specs.map((s) => s.id)).toEqual(["alpha", "beta", "gamma"]);

    // Logs come through the agent.
    const logs = await f.fleet.logs(models[0]!.id, 50);
    expect(logs.lines.length).toBeGreaterThan(0);
    expect(logs.lines.join("\n")).toMatch(/synapse host-agent: starting alpha/);
  });

  it("the event stream carries state changes and log lines; a resume by lastEventId continues without gap or duplicate", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    const controller = new AbortController();
    const it1 = f.events.subscribe({ logs: true, signal: controller.signal })[Symbol.asyncIterator]();
    const firstItem = it1.next(); // registers
    await f.fleet.startAll({ wait: true });
    const seen = [(await firstItem).value!];
    // Read until "ready" and a log line of the server were seen, then stop reading (a client that disconnects).
    const done = () => seen.some((i) => i.event.type === "event" && i.event.state === "ready") && seen.some((i) => i.event.type === "log" && i.event.modelId === m.id);
    while (!done()) seen.push((await it1.next()).value!);
    controller.abort();
    const lastId = seen.at(-1)!.id;
    // A log tail fetched now says where it ends among the numbered live lines (the dashboard joins the two by it).
    const tail = await f.fleet.logs(m.id, 500);
    const liveLines = seen.flatMap((i) => (i.event.type === "log" && i.event.modelId === m.id ? [i.event] : []));
    expect(tail.seq).toBeGreaterThanOrEqual(liveLines.at(-1)!.seq!);
    expect(tail.lines).toContain(liveLines.at(-1)!.line);

    // More happens while disconnected; the resumed stream gives exactly what came after.
    await f.fleet.stop(m.id);
    const resumed = f.events.subscribe({ lastEventId: lastId, logs: true })[Symbol.asyncIterator]();
    const after: string[] = [];
    for (;;) {
      const r = await resumed.next();
      const e = r.value!.event;
      after.push(e.type === "event" ? `${e.kind}:${e.state ?? e.message}` : "log");
      if (e.type === "event" && e.state === "stopped") break;
    }
    await resumed.return?.();
    const states = after.filter((x) => x.startsWith("state:"));
    expect(states).toEqual(["state:stopping", "state:stopped"]);
    expect(after).toContain("action:alpha: stop requested");
    expect(after.filter((x) => x === "state:ready" || x === "state:starting")).toEqual([]);
  });

  it("start-all without waiting returns at once with the servers starting, and they become ready", async () => {
    const f = await setup();
    await f.addModel("alpha");
    await f.addModel("beta");
    const results = await f.fleet.startAll({ wait: false });
    expect(results.map((r) => r.name)).toEqual(["alpha", "beta"]);
    for (const r of results) expect(["starting", "ready"]).toContain(r.state);
    await waitFor("both ready", async () => (await f.fleet.status()).every((s) => s.state === "ready"));
  });

  it("two start-alls at once start one process per model", async () => {
    const f = await setup();
    const models = await Promise.all(["alpha", "beta", "gamma"].map((n) => f.addModel(n)));
    const [a, b] = await Promise.all([f.fleet.startAll({ wait: true }), f.fleet.startAll({ wait: true })]);
    expect(a.map((r) => r.state)).toEqual(["ready", "ready", "ready"]);
    expect(b.map((r) => r.state)).toEqual(["ready", "ready", "ready"]);
    expect(b.map((r) => r.pid)).toEqual(a.map((r) => r.pid));
    for (const m of models) expect(await pidsRunning(m.filePath)).toHaveLength(1);
    // One "starting" per model: nothing was started twice.
    const starts = await f.t.db.event.count({ where: { kind: "state", state: "starting" } });
    expect(starts).toBe(3);
  });

  it("kill -9: the status shows it exited within 1 s, and it is restarted (new pid, ready)", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    const [first] = await f.fleet.startAll({ wait: true });
    expect(first!.state).toBe("ready");
    const killedAt = Date.now();
    process.kill(first!.pid!, "SIGKILL");
    const exited = await waitFor("status shows exited", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "exited" ? s : null;
    }, 1000, 10);
    expect(Date.now() - killedAt).toBeLessThan(1000);
    expect(exited).toMatchObject({ lastSignal: "SIGKILL", desired: "running", pid: null });
    expect(exited.lastError).toMatch(/killed by SIGKILL/);
    expect(exited.nextRestartAt).not.toBeNull();

    const again = await waitFor("restarted and ready", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "ready" && s.pid !== first!.pid ? s : null;
    }, 20_000);
    expect(again.restarts).toBe(1);
    expect(await pidsRunning(m.filePath)).toEqual([again.pid]);
    const actions = await f.t.db.event.findMany({ where: { modelId: m.id, kind: "action" }, orderBy: { id: "asc" } });
    expect(actions.map((e) => e.message).join("\n")).toMatch(/restarting in 1\.0 s[\s\S]*restarting after a crash \(1 restart since it was last started by hand\)/);

    // Start and START ALL ENABLED while it runs as wanted start nothing: its count of restarts and its crash
    // history stay (a trial saw RESTARTS go to 0 on a Start that did nothing). A stop and a start do reset them.
    await f.fleet.start(m.id, { wait: true });
    await f.fleet.startAll({ wait: true });
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "ready", pid: again.pid, restarts: 1 });
    expect((await f.t.db.serverState.findUnique({ where: { modelId: m.id } }))!.recentCrashes).not.toBe("[]");
    await f.fleet.stop(m.id);
    await f.fleet.start(m.id, { wait: true });
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "ready", restarts: 0 });
    expect((await f.t.db.serverState.findUnique({ where: { modelId: m.id } }))!.recentCrashes).toBe("[]");
  });

  it("a Restart by hand of a server that crashed and was restarted resets its count of restarts and its crash history, as a stop and a start do", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    const [first] = await f.fleet.startAll({ wait: true });
    expect(first!.state).toBe("ready");
    process.kill(first!.pid!, "SIGKILL");
    const again = await waitFor("restarted after the crash and ready", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "ready" && s.pid !== first!.pid ? s : null;
    }, 20_000);
    expect(again.restarts).toBe(1);

    // Its Restart button (servers.restart): the running server is stopped and started again, by hand.
    const restarted = await f.fleet.restart(m.id, { wait: true });
    expect(restarted.state, restarted.error ?? "").toBe("ready");
    expect(restarted.pid).not.toBe(again.pid);
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "ready", pid: restarted.pid, restarts: 0 });
    expect((await f.t.db.serverState.findUnique({ where: { modelId: m.id } }))!.recentCrashes, "the restart policy's window starts anew").toBe("[]");
  });

  it("lastSignal and lastExitCode say how the last process ended: SIGKILL for the killed one, nothing for its running restart, its own stop's end after that", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200 } } });
    const m = await f.addModel("alpha");
    const [first] = await f.fleet.startAll({ wait: true });
    process.kill(first!.pid!, "SIGKILL");
    const exited = await waitFor("status shows exited", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "exited" ? s : null;
    }, 5000, 10);
    expect([exited.lastExitCode, exited.lastSignal]).toEqual([null, "SIGKILL"]);

    const again = await waitFor("restarted and ready", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "ready" && s.pid !== first!.pid ? s : null;
    }, 20_000);
    // Running: this process has not ended (the crash is the killed process's, in the event log).
    expect([again.lastExitCode, again.lastSignal, again.lastError]).toEqual([null, null, null]);

    // The user's stop sends SIGTERM, which llama-server handles: it exits with code 0. That is its end, not the crash's.
    const stopped = await f.fleet.stop(m.id);
    expect(stopped.state).toBe("stopped");
    const after = await statusOf(f, "alpha");
    expect([after.state, after.lastExitCode, after.lastSignal]).toEqual(["stopped", 0, null]);
  });

  it("a start refused before any spawn (port held) after a SIGKILL: no signal shown, nothing ran", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 60_000, maxDelayMs: 60_000 } } });
    const m = await f.addModel("alpha");
    const [first] = await f.fleet.startAll({ wait: true });
    process.kill(first!.pid!, "SIGKILL");
    await waitFor("status shows exited", async () => ((await statusOf(f, "alpha")).state === "exited" ? true : null), 5000, 10);
    // Stopped after the crash: that process's end (SIGKILL) is still the last one.
    await f.fleet.stop(m.id);
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "stopped", lastSignal: "SIGKILL" });

    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(m.port, "127.0.0.1", resolve));
    try {
      const refused = await f.fleet.start(m.id, { wait: true });
      expect([refused.state, refused.pid]).toEqual(["failed", null]);
      const s = await statusOf(f, "alpha");
      expect(s.lastError).toMatch(/port \d+ is held by pid/);
      expect([s.lastExitCode, s.lastSignal]).toEqual([null, null]);
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it("stopped on the host with stop-metal-servers: recorded as stopped and left stopped, not restarted as a crash", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200 } } });
    const m = await f.addModel("alpha");
    const [first] = await f.fleet.startAll({ wait: true });
    expect(first!.state).toBe("ready");

    // The host's own CLI: a second agent on the app's state folder stops everything (what the seed's stop script did).
    const cli = createHostAgent(agentOptions(f.dirs, f.bin));
    try {
      await cli.ready;
      const stopped = await cli.call("stopAll", {});
      expect(stopped.map((s) => [s.id, s.state])).toEqual([["alpha", "stopped"]]);
    } finally {
      cli.close();
    }
    const s = await waitFor("status shows stopped", async () => {
      const v = await statusOf(f, "alpha");
      return v.state === "stopped" ? v : null;
    }, 5000, 20);
    expect(s).toMatchObject({ desired: "stopped", pid: null, nextRestartAt: null });
    // Well past the restart backoff: still stopped, no process.
    await new Promise((r) => setTimeout(r, 600));
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "stopped", desired: "stopped", restarts: 0 });
    expect(await pidsRunning(m.filePath)).toEqual([]);
    const messages = (await f.t.db.event.findMany({ where: { modelId: m.id }, orderBy: { id: "asc" } })).map((e) => e.message);
    expect(messages.join("\n")).toMatch(/stopped on its host, outside this app/);
    expect(messages.join("\n")).not.toMatch(/exited|restarting/);

    // Started again from the app, it runs.
    const [again] = await f.fleet.startAll({ wait: true });
    expect(again!.state).toBe("ready");
  });

  it("a crash loop ends failed and is left alone until a user starts it again", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200 } } });
    const crashing = await f.t.db.host.create({ data: { name: "crashy", linkKind: "local", llamaServerBin: STAND_IN_CRASHES_WHEN_READY } });
    const m = await f.addModel("looper", { hostId: crashing.id });
    const [r] = await f.fleet.startAll({ wait: true });
    expect(r).toMatchObject({ name: "looper", state: "ready", host: "crashy" });

    const failed = await waitFor("failed after repeated crashes", async () => {
      const s = await statusOf(f, "looper");
      return s.state === "failed" ? s : null;
    }, 30_000).catch(async (e) => {
      console.log((await f.t.db.event.findMany({ orderBy: { id: "asc" } })).map((x) => `${x.id} ${x.kind} ${x.state} ${x.message}`).join("\n"));
      console.log(await statusOf(f, "looper"));
      console.log((await f.fleet.logs(m.id, 100)).lines.join("\n"));
      throw e;
    });
    expect(failed.restarts).toBe(4);
    expect(failed.lastError).toMatch(/crashed 5 times within 10 minutes/);
    expect(failed.desired).toBe("running");
    // Left alone: nothing runs, nothing is started again, not even by a reconcile pass.
    await f.fleet.reconcile();
    await new Promise((res) => setTimeout(res, 600));
    expect(await pidsRunning(m.filePath)).toEqual([]);
    expect((await statusOf(f, "looper")).state).toBe("failed");
    const starts = await f.t.db.event.count({ where: { modelId: m.id, kind: "state", state: "starting" } });
    expect(starts).toBe(5);

    // A user start clears the window.
    const again = await f.fleet.start(m.id, { wait: true });
    expect(again.state).toBe("ready");
    expect((await statusOf(f, "looper")).restarts).toBe(0);
    await f.fleet.stop(m.id);
  });

  it("restarts that cannot start count as crashes: backoff, then failed", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200 } } });
    const m = await f.addModel("alpha");
    const [r] = await f.fleet.startAll({ wait: true });
    // The file goes away, then the server dies: every restart attempt fails before spawning.
    await rm(m.filePath);
    process.kill(r!.pid!, "SIGKILL");
    const failed = await waitFor("failed after restarts that could not start", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "failed" ? s : null;
    }, 20_000);
    expect(failed.restarts).toBe(4);
    expect(failed.lastError).toMatch(/crashed 5 times/);
    expect(failed.lastError).toMatch(/alpha\.gguf/);
    expect(await pidsRunning(m.filePath)).toEqual([]);
  });

  it("a restart that cannot start is never shown as failed while restarts remain (its failure and the next restart are recorded together)", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200 } } });
    const m = await f.addModel("alpha");
    const [r] = await f.fleet.startAll({ wait: true });
    await rm(m.filePath);
    process.kill(r!.pid!, "SIGKILL");
    // What a dashboard polling the status would show, read as fast as the database answers.
    const seen: { state: string; restarts: number; lastError: string | null }[] = [];
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = await statusOf(f, "alpha");
      seen.push({ state: s.state, restarts: s.restarts, lastError: s.lastError });
      if (s.state === "failed" && /crashed 5 times/.test(s.lastError ?? "")) break;
      if (Date.now() > deadline) throw new Error(`never failed after its restarts; last seen ${JSON.stringify(s)}`);
      await new Promise((resolve) => setImmediate(resolve)); // the rest of the process runs between reads
    }
    const failedEarly = seen.filter((x) => x.state === "failed" && !/crashed 5 times/.test(x.lastError ?? ""));
    expect(failedEarly).toEqual([]);
    expect(seen.at(-1)!.restarts).toBe(4);
  });

  it("a model that cannot start reports failed with the reason; the others start", async () => {
    const f = await setup();
    await f.addModel("good");
    const bad = await f.addModel("bad");
    await f.t.db.model.update({ where: { id: bad.id }, data: { filePath: `${f.dirs.modelRoot}/missing.gguf` } });
    const results = await f.fleet.startAll({ wait: true });
    const byName = Object.fromEntries(results.map((r) => [r.name, r]));
    expect(byName.good!.state).toBe("ready");
    expect(byName.bad!.state).toBe("failed");
    expect(byName.bad!.error).toMatch(/missing\.gguf/);
    const s = await statusOf(f, "bad");
    expect(s).toMatchObject({ state: "failed", desired: "running" });
    expect(s.lastError).toMatch(/missing\.gguf/);
  });

  it("stop, restart and stop-all: processes gone and ports free", async () => {
    const f = await setup();
    const a = await f.addModel("alpha");
    const b = await f.addModel("beta");
    const started = await f.fleet.startAll({ wait: true });
    const pidA = started.find((r) => r.name === "alpha")!.pid!;

    const restarted = await f.fleet.restart(a.id, { wait: true });
    expect(restarted.state).toBe("ready");
    expect(restarted.pid).not.toBe(pidA);
    expect(await pidsRunning(a.filePath)).toEqual([restarted.pid]);
    expect((await statusOf(f, "alpha")).restarts).toBe(0);

    const stopped = await f.fleet.stop(b.id);
    expect(stopped).toMatchObject({ name: "beta", state: "stopped", pid: null, error: null });
    expect(await pidsRunning(b.filePath)).toEqual([]);
    expect(await portFree(b.port)).toBe(true);
    expect(await statusOf(f, "beta")).toMatchObject({ state: "stopped", desired: "stopped" });
    // A reconcile pass does not bring back what the user stopped.
    await f.fleet.reconcile();
    expect(await pidsRunning(b.filePath)).toEqual([]);

    const all = await f.fleet.stopAll();
    expect(all.map((r) => [r.name, r.state])).toEqual([["alpha", "stopped"]]);
    expect(await pidsRunning(a.filePath)).toEqual([]);
    expect(await portFree(a.port)).toBe(true);
    expect((await f.fleet.status()).map((s) => [s.name, s.state, s.desired])).toEqual([
      ["alpha", "stopped", "stopped"],
      ["beta", "stopped", "stopped"],
    ]);
  });

  it("stopped on the host with the seed's stop script while the app was away: left stopped when it comes back; started from the app, it runs", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200 } } });
    const models = await Promise.all(["alpha", "beta"].map((n) => f.addModel(n)));
    const before = await f.fleet.startAll({ wait: true });
    expect(before.map((r) => r.state)).toEqual(["ready", "ready"]);

    // The app goes away leaving the servers up (a crash, or configured so); on the Mac someone runs the seed's stop script.
    await f.restart({
      stopServers: false,
      whileDown: async () => {
        const env = { ...process.env, SYNAPSE_STATE_DIR: f.dirs.stateDir, SYNAPSE_MODEL_ROOTS: f.dirs.modelRoot, LLAMA_SERVER_BIN: f.bin, SYNAPSE_LOG_LEVEL: "warn" };
        const out = await new Promise<string>((resolve, reject) =>
          execFile("bash", [path.join(REPO, "scripts/stop-host-llama-servers.sh")], { env, timeout: 60_000, encoding: "utf8" }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
        );
        expect(out).toMatch(/Stopped 2 of 2/);
      },
    });
    await f.fleet.adopt({ timeoutMs: 5000 });
    await f.fleet.reconcile(f.host.id);
    // Well past the restart backoff: nothing was started again.
    await new Promise((r) => setTimeout(r, 600));
    for (const m of models) expect(await pidsRunning(m.filePath)).toEqual([]);
    const status = await f.fleet.status();
    expect(status.map((s) => [s.name, s.state, s.desired])).toEqual([
      ["alpha", "stopped", "stopped"],
      ["beta", "stopped", "stopped"],
    ]);
    const messages = (await f.t.db.event.findMany({ where: { modelId: models[0]!.id }, orderBy: { id: "asc" } })).map((e) => e.message).join("\n");
    expect(messages).toMatch(/alpha: stopped on its host while this app was away \(stopped on the host by stop-metal-servers/);

    // Started again from the app: it runs, and the host forgets the stop (another restart of the app keeps it running).
    const [again] = await f.fleet.start(models[0]!.id, { wait: true }).then((r) => [r]);
    expect(again!.state).toBe("ready");
    await f.restart({ stopServers: false });
    await f.fleet.adopt({ timeoutMs: 5000 });
    await f.fleet.reconcile(f.host.id);
    expect((await statusOf(f, "alpha"))).toMatchObject({ state: "ready", desired: "running", pid: again!.pid });
    expect((await statusOf(f, "beta"))).toMatchObject({ state: "stopped", desired: "stopped" });
  });

  it("a crash while the app shuts down leaving its servers running (its drain waiting for a request) is restarted by the next app, as its restart policy says", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    const [first] = await f.fleet.startAll({ wait: true });
    expect(first!.state).toBe("ready");
    // A gateway request in flight holds the shutdown's drain open while the server crashes.
    const use = f.fleet.liveEntry({ id: m.id, hostId: f.host.id, name: "alpha" }).beginRequest();
    const shutdown = f.fleet.shutdown({ stopServers: false, drainMs: 10_000 });
    process.kill(first!.pid!, "SIGKILL");
    const crashed = await waitFor("the crash recorded during the shutdown", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "exited" ? s : null;
    }, 5000, 20);
    expect(crashed.nextRestartAt, "its restart is planned, for the next app to make").not.toBeNull();
    use.end(Date.now());
    expect(await shutdown).toEqual([]);
    // Not made by the app that is going.
    expect(await pidsRunning(m.filePath)).toEqual([]);

    await f.restart({ stopServers: false });
    await f.fleet.adopt({ timeoutMs: 5000 });
    const again = await waitFor("restarted by the next app", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "ready" ? s : null;
    }, 20_000);
    expect(await pidsRunning(m.filePath)).toEqual([again.pid]);
    expect(again).toMatchObject({ restarts: 1, nextRestartAt: null });
  });

  it("a crash while the app shuts down stopping its servers plans no restart: it is left stopped, and the next app does not start it", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    const [first] = await f.fleet.startAll({ wait: true });
    const use = f.fleet.liveEntry({ id: m.id, hostId: f.host.id, name: "alpha" }).beginRequest();
    const shutdown = f.fleet.shutdown({ stopServers: true, drainMs: 10_000 });
    process.kill(first!.pid!, "SIGKILL");
    const crashed = await waitFor("the crash recorded during the shutdown", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "exited" ? s : null;
    }, 5000, 20);
    expect(crashed.nextRestartAt).toBeNull();
    use.end(Date.now());
    await shutdown;
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "stopped", desired: "stopped", cause: "shutdown" });
    const actions = await f.t.db.event.findMany({ where: { modelId: m.id, kind: "action" } });
    expect(actions.map((a) => a.message).join("\n")).not.toMatch(/restart/);

    await f.restart({ stopServers: true });
    await f.fleet.adopt({ timeoutMs: 5000 });
    await f.fleet.reconcile(f.host.id);
    expect(await pidsRunning(m.filePath)).toEqual([]);
  });

  it("START ALL ENABLED during a crash's backoff leaves that model to its planned restart: its crash count and history stay, the others start", async () => {
    // A trial pressed START ALL for the other models at "restart 4 of at most 4": the crash loop's model was started
    // at once with RESTARTS 0 and its crash history cleared, so the policy's limit never came.
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 3000, maxDelayMs: 3000 } } });
    const alpha = await f.addModel("alpha");
    await f.addModel("beta");
    await f.fleet.start(alpha.id, { wait: true });
    const { pid } = await statusOf(f, "alpha");
    process.kill(pid!, "SIGKILL");
    const crashed = await waitFor("the crash and its planned restart", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "exited" && s.nextRestartAt ? s : null;
    }, 5000, 20);
    const history = (await f.t.db.serverState.findUniqueOrThrow({ where: { modelId: alpha.id } })).recentCrashes;
    expect(history).not.toBe("[]");

    const results = await f.fleet.startAll({ wait: true });
    expect(results.map((r) => [r.name, r.state, r.restartAt ?? null])).toEqual([
      ["alpha", "exited", crashed.nextRestartAt],
      ["beta", "ready", null],
    ]);
    const during = await f.t.db.serverState.findUniqueOrThrow({ where: { modelId: alpha.id } });
    expect([during.observed, during.recentCrashes, during.nextRestartAt?.toISOString()]).toEqual(["exited", history, crashed.nextRestartAt]);
    expect(await pidsRunning(alpha.filePath)).toEqual([]);
    // Then restarted by its own timer, as its policy planned: the first restart since it was started by hand.
    const again = await waitFor("restarted at its due time", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "ready" ? s : null;
    }, 20_000);
    expect(again.restarts).toBe(1);
    const actions = await f.t.db.event.findMany({ where: { kind: "action", modelId: null }, orderBy: { id: "asc" } });
    expect(actions.map((a) => a.message)).toContainEqual(expect.stringMatching(/^start all: 1 enabled model\(s\) with load policy always; 1 left to the restart planned after its crash \(alpha\)/));
  });

  it("an app restart re-adopts the running servers: same pids, nothing restarted", async () => {
    const f = await setup();
    const models = await Promise.all(["alpha", "beta"].map((n) => f.addModel(n)));
    const before = await f.fleet.startAll({ wait: true });
    const startsBefore = await f.t.db.event.count({ where: { kind: "state", state: "starting" } });

    await f.restart({ stopServers: false });
    for (const m of models) expect(await pidsRunning(m.filePath)).toHaveLength(1);
    const report = await f.fleet.adopt({ timeoutMs: 5000 });
    expect(report).toHaveLength(1);
    expect(report[0]!.error).toBeNull();
    expect(report[0]!.adopted.map((a) => [a.name, a.pid, a.state])).toEqual(before.map((r) => [r.name, r.pid, "ready"]));

    const status = await f.fleet.status();
    expect(status.map((s) => [s.name, s.state, s.pid, s.desired])).toEqual(before.map((r) => [r.name, "ready", r.pid, "running"]));
    for (const [i, m] of models.entries()) expect(await pidsRunning(m.filePath)).toEqual([before[i]!.pid]);
    expect(await f.t.db.event.count({ where: { kind: "state", state: "starting" } })).toBe(startsBefore);

    // Still watched after adoption: a crash of an adopted server is noticed and restarted.
    process.kill(before[0]!.pid!, "SIGKILL");
    const again = await waitFor("adopted server restarted", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "ready" && s.pid !== before[0]!.pid ? s : null;
    }, 20_000);
    expect(again.restarts).toBe(1);
  });

  it("discover hands what the agent found to the registry: new files are added disabled, known ones listed as registered", async () => {
    const f = await setup();
    await f.addModel("known");
    await tinyModel(f.dirs.modelRoot, "fresh-model-Q4_K_M.gguf");
    const report = await f.fleet.discover(f.host.id);
    expect(report.added.map((a) => a.name)).toEqual(["fresh-model-Q4_K_M"]);
    expect(report.registered.map((x) => [x.name, x.enabled])).toEqual([["known", true]]);
    expect(report.skipped).toEqual([]);
    const added = await f.t.db.model.findUniqueOrThrow({ where: { name: "fresh-model-Q4_K_M" } });
    expect(added).toMatchObject({ enabled: false, hostId: f.host.id, source: "discovered" });
    await expect(f.fleet.discover("no-such-host")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("shutdown with stopServers stops every managed server: no process left, ports free, left stopped for the next start", async () => {
    // The app's log, which the local agent logs through: its own line of each stop is checked below.
    const logLines: string[] = [];
    const f = await setup({ log: createLogger("fleet", "info", (l) => logLines.push(l)) });
    const models = await Promise.all(["alpha", "beta"].map((n) => f.addModel(n)));
    await f.fleet.startAll({ wait: true });
    await f.fleet.reconcile(f.host.id); // the agent's hello (its features) is read, as the app's tick does
    const results = await f.fleet.shutdown({ stopServers: true, deadlineMs: 20_000 });
    expect(results.map((r) => [r.name, r.state]).sort()).toEqual([
      ["alpha", "stopped"],
      ["beta", "stopped"],
    ]);
    for (const m of models) {
      expect(await pidsRunning(m.filePath)).toEqual([]);
      expect(await portFree(m.port)).toBe(true);
    }
    const states = await f.t.db.serverState.findMany();
    expect(states.map((s) => [s.observed, s.desired])).toEqual([
      ["stopped", "stopped"],
      ["stopped", "stopped"],
    ]);
    // Recorded as the app's shutdown, not as a stop someone asked for (the agent itself only knows "requested").
    expect(states.map((s) => s.cause)).toEqual(["shutdown", "shutdown"]);
    const stoppedEvents = await f.t.db.event.findMany({ where: { kind: "state", state: "stopped" }, orderBy: { id: "asc" } });
    expect(stoppedEvents.map((e) => e.message).sort()).toEqual(["alpha: stopped (stopped at app shutdown)", "beta: stopped (stopped at app shutdown)"]);
    // The events' data says the same, not the agent's generic "stopped on request".
    expect(stoppedEvents.map((e) => JSON.parse(e.data!) as { reason: string; cause: string }).map((d) => [d.reason, d.cause])).toEqual([
      ["stopped at app shutdown", "shutdown"],
      ["stopped at app shutdown", "shutdown"],
    ]);
    // This checkout's agent (shutdown-cause) was told why: its own log line of each stop says shutdown.
    const agentStops = logLines
      .map((l) => JSON.parse(l) as { component: string; msg: string; id?: string; state?: string; reason?: string; cause?: string })
      .filter((r) => r.component === "fleet.agent.local" && r.msg === "server state" && r.state === "stopped");
    expect(agentStops.map((r) => [r.id, r.reason, r.cause]).sort()).toEqual([
      ["alpha", "stopped at app shutdown", "shutdown"],
      ["beta", "stopped at app shutdown", "shutdown"],
    ]);
    await expect(f.fleet.startAll()).rejects.toMatchObject({ code: "UNAVAILABLE" });
  });
});
