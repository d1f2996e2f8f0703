/**
 * The CLI as people and the ssh wrapper run it: separate processes, real
 * llama-server. Also proves adoption across processes: servers started by one
 * CLI process are seen, with the same pids, by another agent.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, specFor, testDirs, type TestDirs } from "../test/harness/fixtures.ts";
import { llamaServerBin } from "../test/harness/llama-server.ts";
import { freePorts } from "../test/harness/ports.ts";
import { tinyModel } from "../test/harness/tiny-model.ts";
import type { ServerStatus } from "./protocol.ts";
import { canBind } from "./supervisor/port.ts";
import { groupMembers } from "./supervisor/process-table.ts";

const repo = path.resolve(import.meta.dirname, "../..");
const cliBin = path.join(repo, "host-agent/bin/host-agent.mjs");
let dirs: TestDirs;
let env: NodeJS.ProcessEnv;
let model: string;
const pool = new AgentPool();

beforeAll(async () => {
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
  env = { ...process.env, LLAMA_SERVER_BIN: llamaServerBin(), SYNAPSE_STATE_DIR: dirs.stateDir, SYNAPSE_MODEL_ROOTS: dirs.modelRoot, SYNAPSE_LOG_LEVEL: "warn" };
});
afterAll(async () => {
  // Whatever a failed assertion left running: adopt it and stop it.
  const a = pool.make(agentOptions(dirs, llamaServerBin()));
  await a.ready;
  await pool.stopEverything();
  await dirs.cleanup();
});

function run(file: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env, timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe("host-agent CLI", () => {
  it("start-metal-servers → status → adopted by another agent → stop-metal-servers", async () => {
    const ports = await freePorts(2);
    const setup = pool.make(agentOptions(dirs, llamaServerBin(), { adopt: false }));
    await setup.call("apply", { specs: [specFor("alpha", model, ports[0]!), specFor("beta", model, ports[1]!)] });
    setup.close();

    const start = await run(process.execPath, [cliBin, "start-metal-servers"]);
    expect(start.stdout).toMatch(/Starting 2 llama-server\(s\) in parallel/);
    expect(start.stdout).toMatch(/✓ +alpha +port \d+ +pid \d+ +ready in \d+\.\d+s/);
    expect(start.stdout).toMatch(/Summary: 2 ready, 0 failed/);
    expect(start.code).toBe(0);

    const status = await run(process.execPath, [cliBin, "status", "--json"]);
    expect(status.code).toBe(0);
    const list = JSON.parse(status.stdout) as ServerStatus[];
    expect(list.map((s) => [s.id, s.state])).toEqual([["alpha", "ready"], ["beta", "ready"]]);
    const table = await run(process.execPath, [cliBin, "status"]);
    expect(table.stdout).toMatch(/^ID +STATE +PID +PORT/m);

    // A different process (this test) adopts them: same pids, nothing restarted.
    const other = pool.make(agentOptions(dirs, llamaServerBin()));
    await other.ready;
    expect((await other.call("status", {})).map((s) => s.pid)).toEqual(list.map((s) => s.pid));
    other.close();

    // Running start again is idempotent: same pids.
    const again = await run(process.execPath, [cliBin, "start-metal-servers"]);
    expect(again.code).toBe(0);
    for (const s of list) expect(again.stdout).toContain(`pid ${s.pid}`);

    const stop = await run(path.join(repo, "scripts/stop-host-llama-servers.sh"), []);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toMatch(/Stopped 2 of 2/);
    for (const s of list) expect(await groupMembers(s.pid!)).toEqual([]);
    for (const p of ports) expect(await canBind(p, "127.0.0.1")).toBe(true);

    // The stop is remembered until they run again: the app's agent, connecting later, reports it (and the app leaves them stopped).
    const after = JSON.parse((await run(process.execPath, [cliBin, "status", "--json"])).stdout) as ServerStatus[];
    expect(after.map((s) => [s.id, s.state, typeof s.hostStoppedAt])).toEqual([["alpha", "stopped", "string"], ["beta", "stopped", "string"]]);
    expect(after[0]!.reason).toMatch(/^stopped on the host by stop-metal-servers at /);
    const restarted = await run(process.execPath, [cliBin, "start-metal-servers"]);
    expect(restarted.code).toBe(0);
    const running = JSON.parse((await run(process.execPath, [cliBin, "status", "--json"])).stdout) as ServerStatus[];
    expect(running.map((s) => [s.id, s.state, s.hostStoppedAt ?? null])).toEqual([["alpha", "ready", null], ["beta", "ready", null]]);
    expect(await readdir(path.join(dirs.stateDir, "host-stops"))).toEqual([]);
    expect((await run(process.execPath, [cliBin, "stop-metal-servers"])).code).toBe(0);
  });

  it("a stop on the host is seen by agents already running, cleared by a start through any of them, and kept in one file per server", async () => {
    const [port] = await freePorts(1);
    // The app's agent (started before the stop on the host) runs gamma; another agent, also running already, manages nothing.
    const app = pool.make(agentOptions(dirs, llamaServerBin()));
    await app.ready;
    const bystander = pool.make(agentOptions(dirs, llamaServerBin(), { adopt: false }));
    await bystander.ready;
    await app.call("start", { spec: specFor("gamma", model, port!) });

    // The user stops everything on the Mac meanwhile.
    const stop = await run(process.execPath, [cliBin, "stop-metal-servers"]);
    expect(stop.code).toBe(0);
    const seen = (await bystander.call("status", {})).find((s) => s.id === "gamma");
    expect(seen).toMatchObject({ state: "stopped", reason: expect.stringMatching(/^stopped on the host by stop-metal-servers at /) });
    expect(typeof seen?.hostStoppedAt).toBe("string");

    // Started again through the app's agent, which knew nothing of the mark: the mark is gone all the same.
    expect(await readdir(path.join(dirs.stateDir, "host-stops"))).toContain("gamma.json");
    await app.call("start", { spec: specFor("gamma", model, port!) });
    expect(await readdir(path.join(dirs.stateDir, "host-stops"))).not.toContain("gamma.json");
    expect((await bystander.call("status", {})).find((s) => s.id === "gamma")).toBeUndefined();
    await app.call("stop", { id: "gamma" });
    bystander.close();

    // Marks kept by an earlier version in one file move to per-server files at an agent's start.
    await writeFile(path.join(dirs.stateDir, "host-stops.json"), JSON.stringify({ version: 1, stops: { delta: { at: "2026-11-20T10:00:00.000Z", by: "stop-metal-servers" } } }));
    const upgraded = pool.make(agentOptions(dirs, llamaServerBin(), { adopt: false }));
    await upgraded.ready;
    expect((await upgraded.call("status", {})).find((s) => s.id === "delta")?.hostStoppedAt).toBe("2026-11-20T10:00:00.000Z");
    expect(existsSync(path.join(dirs.stateDir, "host-stops.json"))).toBe(false);
    expect(await readdir(path.join(dirs.stateDir, "host-stops"))).toContain("delta.json");
    upgraded.close();
    await rm(path.join(dirs.stateDir, "host-stops", "delta.json"));
  });

  it("start-metal-servers exits non-zero when a server fails, with its log tail", async () => {
    const ports = await freePorts(2);
    const broken = path.join(dirs.modelRoot, "broken.gguf");
    await writeFile(broken, "GGUF but not really");
    const setup = pool.make(agentOptions(dirs, llamaServerBin(), { adopt: false }));
    await setup.call("apply", { specs: [specFor("good", model, ports[0]!), specFor("bad", broken, ports[1]!)] });
    setup.close();
    const start = await run(path.join(repo, "scripts/start-host-llama-servers.sh"), []);
    expect(start.code).toBe(1);
    expect(start.stdout).toMatch(/✓ +good/);
    expect(start.stdout).toMatch(/✗ +bad +port \d+ .*FAILED: exited with code \d+ while loading/);
    expect(start.stdout).toMatch(/Summary: 1 ready, 1 failed/);
    const stop = await run(process.execPath, [cliBin, "stop-metal-servers"]);
    expect(stop.code).toBe(0);
  });

  it("serve --stdio answers JSON lines and ends on shutdown", async () => {
    const child = spawn(process.execPath, [cliBin, "serve", "--stdio"], { env, stdio: ["pipe", "pipe", "pipe"] });
    try {
      const lines = createInterface({ input: child.stdout });
      const replies: unknown[] = [];
      const next = () => new Promise<Record<string, unknown>>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error("no reply within 20 s")), 20_000);
        lines.once("line", (l) => (clearTimeout(t), resolve(JSON.parse(l) as Record<string, unknown>)));
      });
      child.stdin.write(`${JSON.stringify({ type: "request", id: 1, method: "hello", params: { protocolVersion: 1 } })}\n`);
      const hello = await next();
      replies.push(hello);
      expect(hello).toMatchObject({ type: "reply", id: 1, ok: true, result: { protocolVersion: 1, llamaServer: { error: null } } });
      const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.stdin.write(`${JSON.stringify({ type: "request", id: 2, method: "shutdown", params: { stopServers: true } })}\n`);
      expect(await next()).toMatchObject({ type: "reply", id: 2, ok: true, result: { stopped: [] } });
      const code = await Promise.race([exit, new Promise((r) => setTimeout(() => r("timeout"), 10_000))]);
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });

  it("ping and a bad environment", async () => {
    const ping = await run(process.execPath, [cliBin, "ping"]);
    expect(ping.code).toBe(0);
    expect(ping.stdout).toMatch(/^pong host-agent \S+ protocol 1 .* llama-server \S+ \([0-9a-f]{7,40}\)/);
    const saved = env;
    env = { ...env, SYNAPSE_MODEL_ROOTS: "relative/path" };
    try {
      const bad = await run(process.execPath, [cliBin, "status"]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/SYNAPSE_MODEL_ROOTS must be absolute paths/);
    } finally {
      env = saved;
    }
  });
});
