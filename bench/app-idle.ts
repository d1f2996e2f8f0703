/**
 * Benchmark: what the app costs while it serves nothing, with running
 * servers to watch (the agent's health probes, process-tree scan and log
 * watch, the reconcile loop, the metrics reads, the gateway's timers), this
 * checkout against another one, side by side. Prints figures; asserts
 * nothing.
 *
 *   npx tsx bench/app-idle.ts [--baseline DIR] [--servers 1] [--windows 6] [--window-s 10]
 *
 * Each checkout's production server (`scripts/start.mjs`, which builds first
 * if needed) runs with its own database and state folder and `--servers`
 * llama-servers of the tiny model (context 256, 1 slot, 1 thread), started
 * with START ALL ENABLED. After 10 s to settle, the app process's CPU time
 * (every thread's /proc/PID/task/TID/schedstat; Linux) is read over
 * `--windows` windows of `--window-s` seconds, the apps measured in the same
 * windows: ms of CPU per second of wall time, per window and the median. The
 * llama-servers' own CPU is not counted. The number of processes on the
 * machine is printed too: a scan of the whole process table costs with it.
 *
 * Measured (`--baseline` 0b1c785, one server each; 2 cores, 100 processes on
 * the machine, a podman image build and a helper's tests beside it, load 4):
 * this 7.5 ms/s (windows 31.8 9.6 8.2 6.1 6.8 6.2), baseline 10.4 ms/s
 * (36.2 14.3 10.3 8.7 8.3 10.4); an earlier run 8.0 against 11.0. The
 * difference is the process-tree scan reading only the servers' trees
 * (process-tree.ts); it grows with the processes on the machine.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { writeTinyModel } from "../host-agent/src/gguf/tiny-model.ts";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { argValue, cpuMs, llamaServerBin, median } from "./lib.ts";
import { stopChild } from "./proxies.ts";

const BASELINE = argValue("--baseline");
const SERVERS = Number(argValue("--servers") ?? 1);
const WINDOWS = Number(argValue("--windows") ?? 6);
const WINDOW_S = Number(argValue("--window-s") ?? 10);
const ROOT = path.resolve(import.meta.dirname, "..");

interface App {
  name: string;
  port: number;
  child: ChildProcess;
  msPerS: number[];
}

async function trpc(port: number, proc: string, input: unknown): Promise<unknown> {
  const r = await fetch(`http://127.0.0.1:${port}/api/trpc/${proc}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(input) });
  if (!r.ok) throw new Error(`${proc}: ${r.status} ${(await r.text()).slice(0, 300)}`);
  return r.json();
}

async function main() {
  const bin = llamaServerBin();
  const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-bench-idle-"));
  const file = path.join(dir, "models", "tiny.gguf");
  await mkdir(path.dirname(file), { recursive: true });
  await writeTinyModel(file);
  const apps: App[] = [];
  try {
    for (const [name, repo] of [["this", ROOT], ...(BASELINE ? [["baseline", path.resolve(BASELINE)]] : [])] as const) {
      const port = await freePort();
      const cwd = path.join(dir, name);
      await mkdir(cwd);
      const child = spawn(process.execPath, ["--max-semi-space-size=2", path.join(repo, "scripts/start.mjs")], {
        cwd,
        env: { ...process.env, PORT: String(port), HOSTNAME: "127.0.0.1", DATABASE_URL: `file:${path.join(cwd, "app.db")}`, SYNAPSE_STATE_DIR: path.join(cwd, "state"), SYNAPSE_MODEL_ROOTS: path.dirname(file), LLAMA_SERVER_BIN: bin, LOG_LEVEL: "warn" },
        stdio: ["ignore", "ignore", "inherit"],
      });
      apps.push({ name, port, child, msPerS: [] });
      process.stderr.write(`starting ${name} (${repo}; builds first if needed) ...\n`);
      const deadline = Date.now() + 600_000; // includes a first `next build`
      while (!(await fetch(`http://127.0.0.1:${port}/api/health`).then((r) => r.ok, () => false))) {
        if (Date.now() > deadline) throw new Error(`${name}: the app did not answer within 10 minutes`);
        if (child.exitCode !== null) throw new Error(`${name}: the app exited (code ${child.exitCode})`);
        await sleep(250);
      }
      for (let i = 0; i < SERVERS; i++) await trpc(port, "models.create", { name: `idle-${i}`, filePath: file, port: await freePort(), enabled: true, ctxSize: 256, threads: 1, parallel: 1 });
      const started = await fetch(`http://127.0.0.1:${port}/api/models/servers/start-all`, { method: "POST" });
      if (!started.ok) throw new Error(`${name}: start-all ${started.status} ${await started.text()}`);
    }
    await sleep(10_000);
    for (let w = 0; w < WINDOWS; w++) {
      process.stderr.write(`  window ${w + 1}/${WINDOWS}   \r`);
      const before = apps.map((a) => cpuMs(a.child.pid));
      await sleep(WINDOW_S * 1000);
      apps.forEach((a, i) => a.msPerS.push((cpuMs(a.child.pid) - before[i]!) / WINDOW_S));
    }
    const procs = readdirSync("/proc").filter((n) => /^\d+$/.test(n)).length;
    const out = [`the app idle with ${SERVERS} running server(s) (tiny model): its CPU, ms per second of wall time, ${WINDOWS} windows of ${WINDOW_S} s; ${procs} processes on the machine, ${os.cpus().length} cores, load ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`];
    for (const a of apps) out.push(`  ${a.name.padEnd(9)} median ${median(a.msPerS).toFixed(1)} ms/s   windows ${a.msPerS.map((x) => x.toFixed(1)).join(" ")}`);
    process.stdout.write(`${out.join("\n")}\n`);
  } finally {
    // The app stops its llama-servers on SIGTERM; SIGKILL only past a deadline.
    for (const a of apps) await stopChild(a.child, 60_000);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
