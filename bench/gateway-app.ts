/**
 * Benchmark: what the gateway costs inside the app (its front path plus what
 * the app does per completion: the agent's log lines through the link and
 * the fleet, the registry snapshot), this checkout against another one, side
 * by side. Prints figures; asserts nothing.
 *
 *   npx tsx bench/gateway-app.ts --baseline DIR [--rounds 12] [--per-round 100] [--stream]
 *
 * `--stream`: streamed chat completions of 64 tokens instead (SSE; each
 * token one piece the relay reads and writes), the figures per stream.
 *
 * Each checkout's production server (`scripts/start.mjs`, which builds first
 * if needed) runs with its own database and state folder and the tiny model
 * (context 4096, 4 slots, 1 thread) on a llama-server port of its own. Short
 * chat completions (4 tokens) at concurrency 1: each request through the
 * app's gateway is followed by the same request to that app's server
 * directly, and the apps take turns round by round (order alternating).
 *
 * - added latency: gateway minus the direct request right after it, p50 and
 *   p90 per app;
 * - the app process's CPU time per round (every thread's
 *   /proc/PID/task/TID/schedstat; Linux) divided by the requests of the round:
 *   µs per gateway request (plus the log lines of its direct twin, which the
 *   app handles too). On a machine shared with other work CPU time moves far
 *   less than wall time; "this/base" is the median of the per-round ratios.
 *
 * Measured (2 cores shared with a CI run, load 3-9; base = 592764e, this =
 * 62b984a..88aea49: the local link copies log events instead of a JSON round
 * trip and a zod parse, ~4.5 µs less per event in bench/local-link-events.ts,
 * i.e. ~30-60 µs per completion pair here): CPU per request 2006 vs 2171 µs
 * and 2546 vs 2527 µs (paired ratio 1.011, IQR 0.887-1.175) in two runs;
 * added p50 1.06 vs 1.04 ms and 1.28 vs 1.32 ms. The saving is below what
 * this machine's noise lets a run resolve; the CPU time is the figure to
 * compare, over more rounds on a quieter machine.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { writeTinyModel } from "../host-agent/src/gguf/tiny-model.ts";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { argValue, cpuMs, llamaServerBin, median, percentile } from "./lib.ts";

const ROUNDS = Number(argValue("--rounds") ?? 12);
const PER_ROUND = Number(argValue("--per-round") ?? 100);
const BASELINE = argValue("--baseline");
const ROOT = path.resolve(import.meta.dirname, "..");

interface App {
  name: string;
  port: number;
  llamaPort: number;
  child: ChildProcess;
  added: number[];
  cpuUs: number[];
  /** The main thread's share (Next, the fleet, the local agent's log reading; the gateway's relay is a worker thread). */
  mainUs: number[];
  gw: http.Agent;
  direct: http.Agent;
}

const STREAM = process.argv.includes("--stream");
const BODY = JSON.stringify({ model: "bench", messages: [{ role: "user", content: "hi" }], grammar: "root ::= [a-z]+", ...(STREAM ? { max_tokens: 64, stream: true, ignore_eos: true } : { max_tokens: 4 }) });

function post(port: number, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request({ host: "127.0.0.1", port, path: "/v1/chat/completions", method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(BODY) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`port ${port}: ${res.statusCode}`))));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(BODY);
  });
}

/** CPU time of one thread (ms, /proc/PID/task/TID/schedstat; the main thread's TID is the PID). */
function threadCpuMs(pid: number, tid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
}

/** `owned`: the child is added as soon as it is spawned, so it is stopped even when this throws. */
async function startApp(name: string, root: string, dir: string, file: string, bin: string, owned: ChildProcess[]): Promise<App> {
  const port = await freePort();
  const cwd = path.join(dir, name);
  await mkdir(cwd, { recursive: true });
  const child = spawn(process.execPath, ["--max-semi-space-size=2", path.join(root, "scripts/start.mjs")], {
    cwd,
    env: { ...process.env, PORT: String(port), HOSTNAME: "127.0.0.1", DATABASE_URL: `file:${path.join(cwd, "app.db")}`, SYNAPSE_STATE_DIR: path.join(cwd, "state"), SYNAPSE_MODEL_ROOTS: path.dirname(file), LLAMA_SERVER_BIN: bin, LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  owned.push(child);
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 600_000; // includes a first `next build`
  while (!(await fetch(`${base}/api/health`).then((r) => r.ok, () => false))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the app (${name}, ${root}) did not become healthy`);
    await sleep(200);
  }
  const llamaPort = await freePort();
  const created = await fetch(`${base}/api/trpc/models.create`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "bench", filePath: file, port: llamaPort, enabled: true, ctxSize: 4096, threads: 1, parallel: 4, serverApiKeyOff: true }) });
  if (!created.ok) throw new Error(`${name}: models.create answered ${created.status}: ${(await created.text()).slice(0, 300)}`);
  const started = await fetch(`${base}/api/models/servers/start-all`, { method: "POST" });
  if (!started.ok) throw new Error(`${name}: start-all answered ${started.status}: ${(await started.text()).slice(0, 300)}`);
  // One socket each: the next request reuses it (no streamed answers here, so llama-server keeps it open).
  const agent = () => new http.Agent({ keepAlive: true, maxSockets: 1, timeout: 2000 });
  // llama-server closes its connection after a streamed answer: a kept-alive socket would be reused closed.
  return { name, port, llamaPort, child, added: [], cpuUs: [], mainUs: [], gw: agent(), direct: STREAM ? new http.Agent({ keepAlive: false }) : agent() };
}

async function main() {
  if (!BASELINE) throw new Error("usage: npx tsx bench/gateway-app.ts --baseline DIR [--rounds 12] [--per-round 100]");
  if (process.platform !== "linux") throw new Error("CPU time is read from /proc: Linux only");
  const bin = llamaServerBin();
  const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-bench-gwapp-"));
  const file = path.join(dir, "models", "bench.gguf");
  await mkdir(path.dirname(file), { recursive: true });
  await writeTinyModel(file, { contextLength: 4096 });
  const apps: App[] = [];
  const owned: ChildProcess[] = [];
  try {
    apps.push(await startApp("this", ROOT, dir, file, bin, owned));
    apps.push(await startApp("baseline", path.resolve(BASELINE), dir, file, bin, owned));
    for (const a of apps) for (let i = 0; i < 50; i++) await Promise.all([post(a.port, a.gw), post(a.llamaPort, a.direct)]); // warm-up
    for (let r = 0; r < ROUNDS; r++) {
      process.stderr.write(`  round ${r + 1}/${ROUNDS}\r`);
      for (const a of r % 2 ? [...apps].reverse() : apps) {
        const before = cpuMs(a.child.pid!);
        const mainBefore = threadCpuMs(a.child.pid!, a.child.pid!);
        for (let i = 0; i < PER_ROUND; i++) {
          const g = await post(a.port, a.gw);
          a.added.push(g - (await post(a.llamaPort, a.direct)));
        }
        a.cpuUs.push(((cpuMs(a.child.pid!) - before) / PER_ROUND) * 1000);
        a.mainUs.push(((threadCpuMs(a.child.pid!, a.child.pid!) - mainBefore) / PER_ROUND) * 1000);
      }
    }
    process.stderr.write("\n");
    console.log(`gateway in the app, ${STREAM ? "streamed chat completions (64 tokens)" : "short chat completions"} at c=1 (${ROUNDS} rounds of ${PER_ROUND}); load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
    for (const a of apps) console.log(`  ${a.name.padEnd(9)} added p50 ${percentile(a.added, 50).toFixed(3)} ms, p90 ${percentile(a.added, 90).toFixed(3)} ms; app CPU per request median ${median(a.cpuUs).toFixed(0)} µs (IQR ${percentile(a.cpuUs, 25).toFixed(0)} to ${percentile(a.cpuUs, 75).toFixed(0)}), of which its main thread ${median(a.mainUs).toFixed(0)} µs`);
    const ratio = apps[0]!.cpuUs.map((x, i) => x / apps[1]!.cpuUs[i]!);
    console.log(`  CPU this/baseline, paired by round: median ${median(ratio).toFixed(3)} (IQR ${percentile(ratio, 25).toFixed(3)} to ${percentile(ratio, 75).toFixed(3)})`);
  } finally {
    // SIGTERM: each app stops its llama-server before it exits.
    for (const a of apps) {
      a.gw.destroy();
      a.direct.destroy();
    }
    for (const child of owned) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
