/**
 * The spawn helper (launcher.ts): servers spawned from a small helper process
 * behave exactly like servers the agent spawns itself, with the real
 * llama-server and the fault stand-ins, and survive the helper's death.
 */
import { readdir, readFile } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentError } from "../protocol.ts";
import { agentOptions, AgentPool, eventRecorder, stateOf, isAlive, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort, freePorts } from "../../test/harness/ports.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import { canBind } from "./port.ts";
import { groupMembers, processInfo } from "./process-table.ts";

let dirs: TestDirs;
let model: string;
let bin: string;
const pool = new AgentPool();
beforeAll(async () => {
  bin = llamaServerBin();
  dirs = await testDirs("synapse-launcher-");
  model = await tinyModel(dirs.modelRoot);
});
afterEach(() => pool.stopEverything());
afterAll(() => dirs.cleanup());

async function parentOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** The agent's spawn helper: the one child of this process running `node -e`. */
async function helperPid(): Promise<number> {
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    if ((await parentOf(Number(entry)).catch(() => -1)) !== process.pid) continue;
    const cmd = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmd.split("\0")[1] === "-e") return Number(entry);
  }
  throw new Error("no spawn helper found among this process's children");
}

describe("servers spawned by the helper", () => {
  it("start 3 → ready, in their own groups, not children of the agent; kill -9 → exit event with the signal; stop all → clean", async () => {
    const agent = pool.make(agentOptions(dirs, bin, { spawnHelper: true }));
    const rec = eventRecorder(agent);
    const ports = await freePorts(3);
    const started = await Promise.all(["h0", "h1", "h2"].map((id, i) => agent.call("start", { spec: specFor(id, model, ports[i]!) })));
    expect(started.map((s) => s.state)).toEqual(["ready", "ready", "ready"]);
    const helper = await helperPid();
    for (const s of started) {
      const info = await processInfo(s.pid!);
      expect(info?.pgid).toBe(s.pid);
      expect(await parentOf(s.pid!)).toBe(helper);
    }
    const victim = started[1]!;
    const t0 = Date.now();
    process.kill(victim.pid!, "SIGKILL");
    const exited = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "h1" && stateOf(e)?.state === "exited", 5000))!;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(exited).toMatchObject({ signal: "SIGKILL", pid: victim.pid, reason: "killed by SIGKILL" });

    const stopped = await agent.call("stopAll", {});
    expect(stopped.every((s) => s.state === "stopped")).toBe(true);
    for (const s of started) expect(await groupMembers(s.pid!)).toEqual([]);
    for (const p of ports) expect(await canBind(p, "127.0.0.1")).toBe(true);
  });

  it("a stand-in that exits while loading fails at once with its exit code and log tail", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.exitsWhileLoading, { spawnHelper: true }));
    const err = await agent.call("start", { spec: specFor("dies", model, await freePort()) }).then(
      () => null,
      (e: unknown) => e as AgentError,
    );
    expect(err?.code).toBe("FAILED");
    expect(err?.message).toMatch(/exited with code \d+ while loading/);
    expect((err?.data as { logTail: string[] }).logTail.length).toBeGreaterThan(0);
  });

  it("a stand-in that ignores SIGTERM is killed after the grace", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.ignoresSigterm, { spawnHelper: true }));
    const started = await agent.call("start", { spec: specFor("stubborn", model, await freePort(), { stopGraceMs: 300 }) });
    const stopped = await agent.call("stop", { id: "stubborn" });
    expect(stopped.reason).toMatch(/SIGKILL/);
    expect(await groupMembers(started.pid!)).toEqual([]);
  });

  it("the helper dies: servers keep running and a later crash is still reported", async () => {
    const agent = pool.make(agentOptions(dirs, bin, { spawnHelper: true, exitPollMs: 50 }));
    const rec = eventRecorder(agent);
    const started = await agent.call("start", { spec: specFor("orphan", model, await freePort()) });
    process.kill(await helperPid(), "SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    expect(isAlive(started.pid!)).toBe(true);
    expect((await agent.call("status", { ids: ["orphan"] }))[0]?.state).toBe("ready");
    process.kill(started.pid!, "SIGKILL");
    const exited = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "orphan" && stateOf(e)?.state === "exited", 5000))!;
    expect(exited.pid).toBe(started.pid);
    // A new helper serves the next start.
    const again = await agent.call("start", { spec: specFor("after", model, await freePort()) });
    expect(again.state).toBe("ready");
  });
});
