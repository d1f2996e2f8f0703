/**
 * The supervisor against the real llama-server and the tiny model: start,
 * crash reporting, stop, port conflicts, pid-reuse safety, re-adoption,
 * health monitoring, and the log tail joined with the live log events.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentError, type AgentEvent } from "../protocol.ts";
import { agentOptions, AgentPool, eventRecorder, stateOf, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort, freePorts, holdPort } from "../../test/harness/ports.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import { isReadyHint } from "./health.ts";
import { canBind } from "./port.ts";
import { groupMembers, processInfo } from "./process-table.ts";
import { RecordStore } from "./records.ts";
import { terminateGroup } from "./terminate.ts";

let dirs: TestDirs;
let model: string;
let bin: string;
const pool = new AgentPool();
beforeAll(async () => {
  bin = llamaServerBin();
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
});
afterEach(() => pool.stopEverything());
afterAll(() => dirs.cleanup());

describe("real llama-server fleet", () => {
  it("start 3 → all ready; kill -9 one → exit event; stop all → groups empty, ports free", async () => {
    const agent = pool.make(agentOptions(dirs, bin));
    const rec = eventRecorder(agent);
    const ports = await freePorts(3);
    const ids = ["m0", "m1", "m2"];
    const started = await Promise.all(ids.map((id, i) => agent.call("start", { spec: specFor(id, model, ports[i]!) })));
    expect(started.map((s) => s.state)).toEqual(["ready", "ready", "ready"]);
    for (const [i, s] of started.entries()) {
      expect(s.port).toBe(ports[i]);
      expect(s.startedAt).not.toBeNull();
      expect((await fetch(`http://127.0.0.1:${ports[i]}/health`)).status).toBe(200);
      // Each in its own process group, led by the server.
      expect((await processInfo(s.pid!))?.pgid).toBe(s.pid);
    }
    const records = await new RecordStore(dirs.stateDir).list();
    expect(records.records.map((r) => [r.id, r.pid, r.port])).toEqual(ids.map((id, i) => [id, started[i]!.pid, ports[i]]));
    expect(records.records[0]?.startToken).toMatch(/^linux:\d+$/);
    expect(records.records[0]?.argv).toContain("--load-mode");
    // This build says when it serves in words the readiness check knows (it probes at once on them).
    expect((await readFile(started[0]!.logPath!, "utf8")).split("\n").filter(isReadyHint)).not.toEqual([]);

    const victim = started[1]!;
    const t0 = Date.now();
    process.kill(victim.pid!, "SIGKILL");
    const exited = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "m1" && stateOf(e)?.state === "exited", 5000))!;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(exited).toMatchObject({ state: "exited", signal: "SIGKILL", pid: victim.pid, reason: "killed by SIGKILL" });
    expect(exited.logTail.length).toBeGreaterThan(0);

    const stopped = await agent.call("stopAll", {});
    expect(stopped.map((s) => s.state).sort()).toEqual(["stopped", "stopped", "stopped"]);
    for (const s of started) expect(await groupMembers(s.pid!)).toEqual([]);
    for (const p of ports) expect(await canBind(p, "127.0.0.1")).toBe(true);
    expect(await readdir(path.join(dirs.stateDir, "servers"))).toEqual([]);
  });

  it("concurrent starts of one id give one process; another spec for a running id is a conflict", async () => {
    const agent = pool.make(agentOptions(dirs, bin));
    const port = await freePort();
    const spec = specFor("same", model, port);
    const results = await Promise.all([agent.call("start", { spec }), agent.call("start", { spec }), agent.call("start", { spec })]);
    expect(new Set(results.map((r) => r.pid)).size).toBe(1);
    const err = await agent.call("start", { spec: { ...spec, ctxSize: 128 } }).catch((e: AgentError) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("CONFLICT");
  });

  it("a port held by another process → clear error naming port and holder, nothing spawned", async () => {
    const agent = pool.make(agentOptions(dirs, bin));
    const port = await freePort();
    const holder = await holdPort(port);
    try {
      const err = (await agent.call("start", { spec: specFor("blocked", model, port) }).catch((e: unknown) => e)) as AgentError;
      expect(err).toBeInstanceOf(AgentError);
      expect(err.code).toBe("CONFLICT");
      expect(err.message).toContain(`port ${port} is held by pid ${process.pid}`);
      expect(err.data).toMatchObject({ port, pid: process.pid });
      expect(existsSync(path.join(dirs.stateDir, "logs", "blocked.log"))).toBe(false);
      expect(existsSync(path.join(dirs.stateDir, "servers", "blocked.json"))).toBe(false);
      expect(await agent.call("status", {})).toEqual([]);
    } finally {
      await holder.close();
    }
  });

  it("a record whose pid now belongs to an unrelated live process: that process is never signalled", async () => {
    // An unrelated process, leading its own group like a server would.
    const bystander = spawn("sleep", ["60"], { detached: true, stdio: "ignore" });
    try {
      const pid = bystander.pid!;
      const info = (await processInfo(pid))!;
      const port = await freePort();
      const fakeToken = `linux:${Number(info.startToken.slice(6)) - 500}`;
      await new RecordStore(dirs.stateDir).write({
        version: 1, id: "ghost", pid, pgid: pid, startToken: fakeToken, startedAt: new Date(0).toISOString(), port, bindAddress: "127.0.0.1",
        binary: bin, argv: [], logPath: path.join(dirs.stateDir, "logs", "ghost.log"), specHash: "x", spec: { ...specFor("ghost", model, port), bindAddress: "127.0.0.1", extraFlags: [] } as never,
        readyAt: null, agentPid: 1,
      });
      const agent = pool.make(agentOptions(dirs, bin));
      await agent.ready;
      expect(await agent.call("status", {})).toEqual([]);
      await agent.call("stopAll", { graceMs: 0 });
      await agent.call("stop", { id: "ghost", graceMs: 0 });
      // Even asked directly, the terminator refuses a pid whose start time differs.
      const r = await terminateGroup({ pid, pgid: pid, startToken: fakeToken, port, bindAddress: "127.0.0.1" }, 0);
      expect(r.ended).toBe("foreign");
      await new Promise((res) => setTimeout(res, 100));
      const after = await processInfo(pid);
      expect(after).not.toBeNull();
      expect(after?.zombie).toBe(false);
      expect(existsSync(path.join(dirs.stateDir, "servers", "ghost.json"))).toBe(false);
    } finally {
      bystander.kill("SIGKILL");
    }
  });

  it("agent restart → servers re-adopted with the same pids, then watched and stoppable", async () => {
    const first = pool.make(agentOptions(dirs, bin));
    const ports = await freePorts(2);
    const a = await first.call("start", { spec: specFor("keep-a", model, ports[0]!) });
    const b = await first.call("start", { spec: specFor("keep-b", model, ports[1]!) });
    // The record gets the ready time shortly after "ready" (out of the way of other starts).
    const store = new RecordStore(dirs.stateDir);
    const readyInRecord = async () => { const r = await store.read("keep-a"); return r && r !== "missing" ? r.readyAt : null; };
    await expect.poll(readyInRecord, { timeout: 5000 }).toBe(a.readyAt);
    first.close(); // the agent goes away; the servers stay

    const second = pool.make(agentOptions(dirs, bin));
    const rec = eventRecorder(second);
    await second.ready;
    const status = await second.call("status", {});
    expect(status.map((s) => [s.id, s.state, s.pid])).toEqual([
      ["keep-a", "ready", a.pid],
      ["keep-b", "ready", b.pid],
    ]);
    expect(status[0]?.specHash).toBe(a.specHash);
    expect(status[0]?.readyAt).toBe(a.readyAt);
    // Same spec again: no restart, same process.
    expect((await second.call("start", { spec: specFor("keep-a", model, ports[0]!) })).pid).toBe(a.pid);

    // An adopted server is not our child: its exit is seen by polling, still quickly.
    const t0 = Date.now();
    process.kill(b.pid!, "SIGKILL");
    const exited = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "keep-b" && stateOf(e)?.state === "exited", 5000))!;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(exited.pid).toBe(b.pid);

    const stopped = await second.call("stop", { id: "keep-a" });
    expect(stopped.state).toBe("stopped");
    expect(await groupMembers(a.pid!)).toEqual([]);
    expect(await canBind(ports[0]!, "127.0.0.1")).toBe(true);
  });

  it("an adopted server watched the macOS way (signal 0, identity only now and then): kill -9 is still seen within 1 s", async () => {
    const first = pool.make(agentOptions(dirs, bin));
    const port = await freePort();
    const s = await first.call("start", { spec: specFor("mac-watch", model, port) });
    first.close();
    // Identity (start time, via `ps` on macOS) checked only every 1000 polls: the exit is seen by signal 0 alone.
    const second = pool.make(agentOptions(dirs, bin, { exitPollIdentityEvery: 1000 }));
    const rec = eventRecorder(second);
    await second.ready;
    expect((await second.call("status", { ids: ["mac-watch"] }))[0]).toMatchObject({ state: "ready", pid: s.pid });
    const t0 = Date.now();
    process.kill(s.pid!, "SIGKILL");
    const exited = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "mac-watch" && stateOf(e)?.state === "exited", 5000))!;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(exited.pid).toBe(s.pid);
    expect(await canBind(port, "127.0.0.1")).toBe(true);
  });

  it("stopped on the host by another agent (stop-metal-servers): the watching agent reports a stop, not a crash", async () => {
    const serving = pool.make(agentOptions(dirs, bin));
    const rec = eventRecorder(serving);
    const ports = await freePorts(2);
    const s = await serving.call("start", { spec: specFor("host-stop", model, ports[0]!) });
    const crash = await serving.call("start", { spec: specFor("host-crash", model, ports[1]!) });

    // What `host-agent stop-metal-servers` does: a second agent on the same state folder adopts and stops.
    const cli = pool.make(agentOptions(dirs, bin));
    await cli.ready;
    const byCli = await cli.call("stop", { id: "host-stop" });
    expect(byCli.state).toBe("stopped");
    const seen = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "host-stop" && !["ready", "starting"].includes(stateOf(e)!.state), 5000))!;
    expect(seen.state).toBe("stopped");
    expect(seen.reason).toMatch(/another agent/);
    expect(rec.events.some((e) => stateOf(e)?.id === "host-stop" && stateOf(e)?.state === "exited")).toBe(false);
    expect(await groupMembers(s.pid!)).toEqual([]);

    // A real crash is still a crash.
    process.kill(crash.pid!, "SIGKILL");
    const crashed = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "host-crash" && stateOf(e)?.state === "exited", 5000))!;
    expect(crashed.signal).toBe("SIGKILL");
    cli.close();
  });

  it("a stop request left by an agent that died halfway does not turn a later crash into a stop", async () => {
    const serving = pool.make(agentOptions(dirs, bin));
    const rec = eventRecorder(serving);
    const s = await serving.call("start", { spec: specFor("stale-stop", model, await freePort()) });
    // What a CLI agent killed between writing its stop request and signalling leaves behind, an hour ago.
    const store = new RecordStore(dirs.stateDir);
    const record = await store.read("stale-stop");
    if (!record || record === "missing") throw new Error("no record for stale-stop");
    await store.write({ ...record, stopRequest: { by: 999_999, agent: "an-agent-that-died", at: new Date(Date.now() - 3_600_000).toISOString() } });

    process.kill(s.pid!, "SIGKILL");
    const seen = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "stale-stop" && !["ready", "starting"].includes(stateOf(e)!.state), 5000))!;
    expect(seen).toMatchObject({ state: "exited", signal: "SIGKILL" });
  });

  it("a hung server is marked unhealthy, and ready again when it recovers", async () => {
    const agent = pool.make(agentOptions(dirs, bin, { healthIntervalMs: 150, healthTimeoutMs: 300 }));
    const rec = eventRecorder(agent);
    const port = await freePort();
    const s = await agent.call("start", { spec: specFor("hang", model, port) });
    process.kill(s.pid!, "SIGSTOP");
    try {
      const bad = stateOf(await rec.waitFor((e) => stateOf(e)?.state === "unhealthy", 5000))!;
      expect(bad.reason).toMatch(/timed out after 300 ms/);
    } finally {
      process.kill(s.pid!, "SIGCONT");
    }
    const good = stateOf(await rec.waitFor((e) => stateOf(e)?.state === "ready" && stateOf(e)?.reason === "health check passed again", 5000))!;
    expect(good.pid).toBe(s.pid);
  });

  it("keeps a server's log under its cap with one rotation, while the server keeps logging", async () => {
    const agent = pool.make(agentOptions(dirs, bin, { logMaxBytes: 1024 }));
    const port = await freePort();
    const s = await agent.call("start", { spec: specFor("chatty", model, port) });
    const logPath = s.logPath!;
    const { stat } = await import("node:fs/promises");
    // This llama-server logs about 3.5 KB while loading; the watcher rotates within about a second.
    let rotated = false;
    for (let i = 0; i < 40 && !rotated; i++) {
      rotated = existsSync(`${logPath}.1`);
      if (!rotated) await new Promise((r) => setTimeout(r, 100));
    }
    expect(rotated).toBe(true);
    expect((await stat(`${logPath}.1`)).size).toBeGreaterThan(1024);
    // The server writes on into the truncated file (O_APPEND), and the tail spans both files.
    await fetch(`http://127.0.0.1:${port}/completion`, { method: "POST", body: JSON.stringify({ prompt: "x", n_predict: 2 }) });
    await new Promise((r) => setTimeout(r, 100));
    const { readFile } = await import("node:fs/promises");
    const current = (await readFile(logPath, "utf8")).split("\n").filter(Boolean);
    expect(current.length).toBeGreaterThan(0);
    const tail = await agent.call("logs", { id: "chatty", lines: 500 });
    expect(tail.lines.length).toBeGreaterThan(current.length);
    expect(tail.lines.at(-1)).toBe(current.at(-1));
  });

  it("hello reports the installed llama-server and its flag style", async () => {
    const agent = pool.make(agentOptions(dirs, bin));
    const h = await agent.call("hello", { protocolVersion: 1 });
    // The harness builds a llama.cpp new enough to have --load-mode.
    expect(h.llamaServer).toMatchObject({ path: bin, loadFlags: "load-mode", error: null });
    expect(h.llamaServer.commit).toMatch(/^[0-9a-f]{7,40}$/);
    expect(h.llamaServer.version).not.toBeNull();
    expect(h.modelRoots).toEqual([dirs.modelRoot]);
    // What the app checks before it relies on causes, owned readiness and complete stops (agentHas).
    expect(h.features).toEqual(expect.arrayContaining(["stop-cause", "owned-readiness", "complete-stop"]));
    const err = (await agent.call("hello", { protocolVersion: 99 }).catch((e: unknown) => e)) as AgentError;
    expect(err.issues?.[0]?.path).toBe("protocolVersion");
  });
});

// A log read while the server is writing it, joined with the live log events, is the log:
// every line once, in order. The lines come from completion requests sent while the tail is read.
const logLines = (events: AgentEvent[], id: string) =>
  events.flatMap((e) => (e.kind === "log" && e.id === id ? [{ line: e.line, seq: e.seq! }] : []));

describe("log tail + live events", () => {
  it("tails read mid-stream join the events exactly: no line lost, none twice", async () => {
    const agent = pool.make(agentOptions(dirs, bin));
    const rec = eventRecorder(agent);
    const port = await freePort();
    const started = await agent.call("start", { spec: specFor("tail-join", model, port) });
    expect(started.state).toBe("ready");

    // Requests make the server log while the tails are read.
    const talk = (async () => {
      for (let i = 0; i < 12; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/completion`, { method: "POST", body: JSON.stringify({ prompt: `hello ${i}`, n_predict: 4 }) });
        await res.text();
      }
    })();
    const reads: { lines: string[]; seq: number; eventsSoFar: number }[] = [];
    const readTails = (async () => {
      for (let i = 0; i < 40; i++) {
        const r = await agent.call("logs", { id: "tail-join", lines: 5000 });
        // Every event before the reply has been delivered by now; those after it have not.
        reads.push({ lines: r.lines, seq: r.seq!, eventsSoFar: rec.events.length });
        await new Promise((res) => setTimeout(res, 3));
      }
    })();
    await Promise.all([talk, readTails]);
    await agent.call("stop", { id: "tail-join" });
    // The follower hands out what the server wrote last before the file is whole in events too.
    const file = (await readFile(started.logPath!, "utf8")).split("\n").slice(0, -1);
    await expect.poll(() => logLines(rec.events, "tail-join").at(-1)?.line, { timeout: 5000 }).toBe(file.at(-1));

    const live = logLines(rec.events, "tail-join");
    expect(live.length).toBeGreaterThan(20);
    for (let i = 1; i < live.length; i++) expect(live[i]!.seq).toBeGreaterThan(live[i - 1]!.seq);
    // The events are the file from where the follower started.
    expect(file.slice(-live.length)).toEqual(live.map((l) => l.line));

    let midStream = 0;
    for (const r of reads) {
      const after = live.filter((l) => l.seq > r.seq).map((l) => l.line);
      const joined = [...r.lines, ...after];
      expect(joined).toEqual(file);
      // Every event up to the reply's seq came before the reply (later ones may come before it too; they are kept).
      const before = logLines(rec.events.slice(0, r.eventsSoFar), "tail-join");
      expect(before.filter((l) => l.seq <= r.seq).length).toBe(live.filter((l) => l.seq <= r.seq).length);
      if (after.length > 0 && live.some((l) => l.seq <= r.seq)) midStream += 1;
    }
    // Most reads fell while the server was still writing (else this test shows nothing).
    expect(midStream).toBeGreaterThan(reads.length / 2);
  });
});
