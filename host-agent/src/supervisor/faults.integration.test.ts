/**
 * Faults, played by scripted stand-ins (named as such; see
 * test/harness/stand-ins): a server that ignores SIGTERM, one that exits
 * while loading, one that forks a child, one that never finishes loading.
 */
import { readFile } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentError, type AgentEvent } from "../protocol.ts";
import { agentOptions, AgentPool, eventRecorder, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { freePort } from "../../test/harness/ports.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import { canBind } from "./port.ts";
import { groupMembers, processInfo } from "./process-table.ts";

let dirs: TestDirs;
let model: string;
const pool = new AgentPool();
beforeAll(async () => {
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
});
afterEach(() => pool.stopEverything());
afterAll(() => dirs.cleanup());

async function failureOf(p: Promise<unknown>): Promise<AgentError> {
  try {
    await p;
  } catch (e) {
    return e as AgentError;
  }
  throw new Error("expected the start to fail");
}

describe("fault stand-ins", () => {
  it("a server that ignores SIGTERM is killed after the grace", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.ignoresSigterm));
    const port = await freePort();
    const s = await agent.call("start", { spec: specFor("stubborn", model, port, { stopGraceMs: 700 }) });
    const t0 = Date.now();
    const stopped = await agent.call("stop", { id: "stubborn" });
    const elapsed = Date.now() - t0;
    expect(stopped.state).toBe("stopped");
    expect(stopped.reason).toMatch(/SIGKILL/);
    expect(stopped.signal).toBe("SIGKILL");
    expect(elapsed).toBeGreaterThanOrEqual(650);
    expect(elapsed).toBeLessThan(5000);
    expect(await groupMembers(s.pid!)).toEqual([]);
    expect(await canBind(port, "127.0.0.1")).toBe(true);
    const log = await agent.call("logs", { id: "stubborn" });
    expect(log.lines.join("\n")).toMatch(/got SIGTERM, ignoring it/);
  });

  it("a server that waits for its clients after SIGTERM gets a second SIGTERM, not SIGKILL at the end of the grace", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.waitsForClients));
    const port = await freePort();
    const s = await agent.call("start", { spec: specFor("held", model, port, { stopGraceMs: 60_000 }) });
    const stopped = await agent.call("stop", { id: "held" });
    expect(stopped.state).toBe("stopped");
    expect(stopped.cause).toBe("requested");
    expect(stopped.signal ?? null).toBeNull();
    expect(stopped.reason).toMatch(/ended by a second one/);
    expect(stopped.reason).not.toMatch(/SIGKILL/);
    expect(await groupMembers(s.pid!)).toEqual([]);
    expect(await canBind(port, "127.0.0.1")).toBe(true);
    const log = (await agent.call("logs", { id: "held" })).lines.join("\n");
    expect(log).toMatch(/cleaning up before exit/);
    expect(log).toMatch(/Received second interrupt/);
  });

  it("a server sent SIGTERM from outside the app that waits for its clients: the agent sends the second SIGTERM and reports the exit, saying so", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.waitsForClients));
    const rec = eventRecorder(agent);
    const port = await freePort();
    const s = await agent.call("start", { spec: specFor("outside", model, port, { stopGraceMs: 60_000 }) });
    process.kill(s.pid!, "SIGTERM"); // kill, or Activity Monitor's Quit, on the host
    const exited = (await rec.waitFor((e) => e.type === "event" && e.kind === "state" && e.status.id === "outside" && e.status.state === "exited", 15_000)) as Extract<AgentEvent, { kind: "state" }>;
    expect(exited.status.cause).toBe("crash");
    expect(exited.status.reason).toMatch(/^exited with code 1; it had begun exiting on a signal from outside the app \('cleaning up before exit' in its log\) and still ran 2000 ms later: ended by a second SIGTERM$/);
    expect(await groupMembers(s.pid!)).toEqual([]);
    const log = (await agent.call("logs", { id: "outside" })).lines.join("\n");
    expect(log).toMatch(/Received second interrupt/);
  });

  it("a server that exits while loading fails at once, with its exit code and log tail", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.exitsWhileLoading));
    const rec = eventRecorder(agent);
    const port = await freePort();
    const t0 = Date.now();
    const err = await failureOf(agent.call("start", { spec: specFor("doomed", model, port, { readinessDeadlineMs: 60_000 }) }));
    const elapsed = Date.now() - t0;
    expect(err.code).toBe("FAILED");
    expect(err.message).toMatch(/exited with code 3 while loading/);
    expect(err.message).toMatch(/tensor data is not within file bounds/);
    // Nowhere near the 60 s deadline: the exit is noticed at once (the stand-in dies ~150 ms in).
    expect(elapsed).toBeLessThan(3000);
    const status = (await agent.call("status", { ids: ["doomed"] }))[0]!;
    expect(status).toMatchObject({ state: "failed", exitCode: 3 });
    expect(status.logTail.at(-1)).toMatch(/failed to load model/);
    const states = rec.events.flatMap((e) => (e.kind === "state" ? [e.status.state] : []));
    expect(states).toEqual(["starting", "failed"]);
    expect(await canBind(port, "127.0.0.1")).toBe(true);
  });

  it("a failed start's log tail is this run's alone: it begins at this run's header, not with the last words of an earlier run", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.exitsWhileLoading));
    const port = await freePort();
    const first = await failureOf(agent.call("start", { spec: specFor("twice", model, port) }));
    expect(first.message).toMatch(/exited with code 3 while loading/);
    const second = await failureOf(agent.call("start", { spec: specFor("twice", model, port) }));
    const tail = (second.data as { logTail: string[] }).logTail;
    expect(tail[0]).toMatch(/^=== synapse host-agent: starting twice at /);
    expect(tail.filter((l) => l.startsWith("=== synapse host-agent: starting"))).toHaveLength(1);
    expect(tail.at(-1)).toMatch(/failed to load model/);
    // The whole log still holds both runs.
    const log = await agent.call("logs", { id: "twice" });
    expect(log.lines.filter((l) => l.startsWith("=== synapse host-agent: starting"))).toHaveLength(2);
  });

  it("a server that forks a child: stopping reaps the child too", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.forksChild));
    const port = await freePort();
    const s = await agent.call("start", { spec: specFor("forker", model, port, { stopGraceMs: 500 }) });
    const lines = (await agent.call("logs", { id: "forker" })).lines.join("\n");
    const childPid = Number(/forked child pid (\d+)/.exec(lines)?.[1]);
    expect(childPid).toBeGreaterThan(0);
    expect((await processInfo(childPid))?.pgid).toBe(s.pid);
    const t0 = Date.now();
    const stopped = await agent.call("stop", { id: "forker" });
    expect(stopped.state).toBe("stopped");
    // The leader left on SIGTERM; the child ignored it and needed the group SIGKILL after the grace.
    expect(stopped.reason).toMatch(/SIGKILL/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    const child = await processInfo(childPid);
    expect(child === null || child.zombie).toBe(true);
    expect(await groupMembers(s.pid!)).toEqual([]);
  });

  it("a server whose leader died while no agent watched: the next agent reaps the helpers left in its group", async () => {
    const first = pool.make(agentOptions(dirs, standIns.forksChild));
    const port = await freePort();
    const s = await first.call("start", { spec: specFor("orphaned", model, port) });
    const lines = (await first.call("logs", { id: "orphaned" })).lines.join("\n");
    const childPid = Number(/forked child pid (\d+)/.exec(lines)?.[1]);
    first.close();
    process.kill(s.pid!, "SIGKILL");
    await new Promise((r) => setTimeout(r, 100));
    expect((await processInfo(childPid))?.zombie).toBe(false);

    const second = pool.make(agentOptions(dirs, standIns.forksChild));
    await second.ready;
    expect(await second.call("status", {})).toEqual([]);
    const child = await processInfo(childPid);
    expect(child === null || child.zombie).toBe(true);
    expect(await groupMembers(s.pid!)).toEqual([]);
  });

  it("a stop while a server is still loading does not wait for the load: the start fails, the stop ends it", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.hangsLoading));
    const port = await freePort();
    const starting = failureOf(agent.call("start", { spec: specFor("loading", model, port, { readinessDeadlineMs: 60_000, stopGraceMs: 500 }) }));
    let pid: number | null = null;
    for (let i = 0; i < 200 && pid === null; i++) {
      const [s] = await agent.call("status", { ids: ["loading"] });
      pid = s?.state === "starting" ? s.pid : null;
      if (pid === null) await new Promise((r) => setTimeout(r, 25));
    }
    expect(pid).not.toBeNull();
    const t0 = Date.now();
    const stopped = await agent.call("stop", { id: "loading" });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(stopped.state).toBe("stopped");
    const err = await starting;
    expect(err.code).toBe("FAILED");
    expect(err.message).toMatch(/stopped before it became ready/);
    expect(await groupMembers(pid!)).toEqual([]);
    expect(await canBind(port, "127.0.0.1")).toBe(true);
  });

  it("a loading server that logs all the time is probed on a timer, not on every line; its 'model loaded' line brings the probe that finds it ready", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.chattyLoader));
    const port = await freePort();
    const s = await agent.call("start", { spec: specFor("chatty", model, port) });
    expect(s.state).toBe("ready");
    const log = (await readFile(s.logPath!, "utf8")).split("\n");
    const loaded = log.findIndex((l) => /llama_server: model loaded/.test(l));
    expect(loaded).toBeGreaterThan(0);
    expect(log.filter((l) => /load_tensors: tensor \d+ done/.test(l)).length).toBeGreaterThan(100);
    const probesWhileLoading = log.slice(0, loaded).filter((l) => /health request \d+: 503/.test(l));
    // 1.2 s of loading: the timer (10 ms backing off to 250 ms) probes about 10 times; one probe per
    // log write (at most every 5 ms) was ~200.
    expect(probesWhileLoading.length).toBeGreaterThan(0);
    expect(probesWhileLoading.length).toBeLessThanOrEqual(20);
    // Then one probe, which finds it ready: nothing after it.
    const after = log.slice(loaded).filter((l) => /health request \d+:/.test(l));
    expect(after).toEqual([expect.stringMatching(/health request \d+: 200 /)]);
    // It came because of the line, not the timer: the stand-in turned ready just after a probe, and
    // the next timed one was 250 ms away. (Generous: the line is usually read within milliseconds.)
    const at = (line: string) => Number(/\(\+(\d+) ms\)/.exec(line)?.[1]);
    expect(at(after[0]!) - at(log[loaded]!)).toBeLessThan(150);
  });

  it("a server that never finishes loading fails at its deadline and is ended", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.hangsLoading));
    const port = await freePort();
    const t0 = Date.now();
    const err = await failureOf(agent.call("start", { spec: specFor("slow", model, port, { readinessDeadlineMs: 800, stopGraceMs: 500 }) }));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(750);
    expect(err.code).toBe("FAILED");
    expect(err.message).toMatch(/not ready within 800 ms \(last: loading \(HTTP 503\)\)/);
    const status = err.data as { pid: number; state: string };
    expect(status.state).toBe("failed");
    expect(await groupMembers(status.pid)).toEqual([]);
    expect(await canBind(port, "127.0.0.1")).toBe(true);
  });
});
