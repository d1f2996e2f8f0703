/**
 * Fault 4 (issue 13): a stop that leaves the port held must not report
 * success. Played by scripted stand-ins (test/harness/stand-ins): a child
 * that calls setsid() and keeps the listening socket; a parent that exits at
 * once after forking a daemon that holds the port; a daemon that escapes
 * between two looks with the environment cleared.
 */
import { readFile } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentError } from "../protocol.ts";
import { agentOptions, AgentPool, isLiveProcess, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { freePort } from "../../test/harness/ports.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import { canBind } from "./port.ts";

let dirs: TestDirs;
let model: string;
const pool = new AgentPool();
/** Pids a test found in a log: killed after it, whatever the agent did. */
const leftovers: number[] = [];
beforeAll(async () => {
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
});
afterEach(async () => {
  await pool.stopEverything();
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone, as it should be
    }
  }
});
afterAll(() => dirs.cleanup());

async function pidInLog(logPath: string, pattern: RegExp): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const m = pattern.exec(await readFile(logPath, "utf8"));
    if (m?.[1]) {
      leftovers.push(Number(m[1]));
      return Number(m[1]);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no ${pattern} in ${logPath}`);
}

describe("a stop ends every process the server started, or says what still holds the port", () => {
  it("a child that calls setsid() and keeps the listening socket is ended by stop", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.setsidChild));
    const port = await freePort();
    const s = await agent.call("start", { spec: specFor("setsid", model, port, { stopGraceMs: 500 }) });
    const child = await pidInLog(s.logPath!, /setsid child pid (\d+)/);
    expect(isLiveProcess(child)).toBe(true);
    const stopped = await agent.call("stop", { id: "setsid" });
    expect(stopped.state).toBe("stopped");
    expect(isLiveProcess(child)).toBe(false);
    expect(await canBind(port, "127.0.0.1")).toBe(true);
    expect(stopped.cause).toBe("requested");
  });

  it("app shutdown (stopAll) leaves no such child behind either, and names only the servers it stopped", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.setsidChild));
    const ports = [await freePort(), await freePort()];
    const started = await Promise.all(ports.map((port, i) => agent.call("start", { spec: specFor(`shut${i}`, model, port, { stopGraceMs: 500 }) })));
    const children = await Promise.all(started.map((s) => pidInLog(s.logPath!, /setsid child pid (\d+)/)));
    // A third, stopped before: the shutdown did not stop it, and does not say it did.
    const before = await agent.call("start", { spec: specFor("shut-before", model, await freePort(), { stopGraceMs: 500 }) });
    await agent.call("stop", { id: before.id });
    const result = await agent.call("shutdown", { stopServers: true });
    expect(result.stopped.sort()).toEqual(["shut0", "shut1"]);
    for (const c of children) expect(isLiveProcess(c)).toBe(false);
    for (const p of ports) expect(await canBind(p, "127.0.0.1")).toBe(true);
  });

  it("a parent that exits at once after forking a daemon that holds the port: the start fails and the daemon is ended", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.forksDaemonExits));
    const port = await freePort();
    const err = await agent.call("start", { spec: specFor("daemon", model, port, { stopGraceMs: 500 }) }).catch((e: AgentError) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).message).toMatch(/exited with code 0 while loading/);
    const daemon = await pidInLog(agent.supervisor.logPathFor("daemon"), /daemon pid (\d+)/);
    expect(isLiveProcess(daemon)).toBe(false);
    expect(await canBind(port, "127.0.0.1")).toBe(true);
    const [status] = await agent.call("status", { ids: ["daemon"] });
    // A failed start, not a stop that left the port held.
    expect(status).toMatchObject({ state: "failed", cause: "crash", stopIncomplete: null });
    expect((await agent.call("stop", { id: "daemon" })).state).toBe("stopped");
  });

  it("a daemon that escaped between two looks: the stop is incomplete, names the holder, and a start is refused until the port is free", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.escapes));
    const port = await freePort();
    const s = await agent.call("start", { spec: specFor("escapee", model, port, { stopGraceMs: 500 }) });
    const daemon = await pidInLog(s.logPath!, /escaped daemon pid (\d+)/);
    const stopped = await agent.call("stop", { id: "escapee" });
    expect(stopped.state).not.toBe("stopped");
    expect(stopped).toMatchObject({ state: "failed", cause: "requested", reason: `stop incomplete: port ${port} still held by pid ${daemon} (node)` });
    // The same as data (feature stop-incomplete), in the stop's answer and in a later status.
    expect(stopped.stopIncomplete).toEqual({ port, holderPid: daemon, holderCommand: "node" });
    expect((await agent.call("status", { ids: ["escapee"] }))[0]?.stopIncomplete).toEqual({ port, holderPid: daemon, holderCommand: "node" });
    expect(isLiveProcess(daemon)).toBe(true);
    const refused = await agent.call("start", { spec: specFor("escapee", model, port, { stopGraceMs: 500 }) }).catch((e: AgentError) => e);
    expect(refused).toBeInstanceOf(AgentError);
    expect((refused as AgentError).code).toBe("CONFLICT");
    expect((refused as AgentError).message).toMatch(new RegExp(`port ${port} still held by pid ${daemon} \\(node\\)`));
    // Once the holder is gone, asking again completes the stop.
    process.kill(daemon, "SIGKILL");
    expect(await agent.call("stop", { id: "escapee" })).toMatchObject({ state: "stopped", cause: "requested", stopIncomplete: null });
  });
});
