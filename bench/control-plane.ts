/**
 * Benchmark: the control plane's REST start-all against the host agent
 * alone, with the real llama-server and tiny models. Prints its figures; not
 * a timed test.
 *
 *   npx tsx bench/control-plane.ts [--reps 15] [--sizes 4,16] [--status-samples 200] [--all]
 *                                  [--baseline DIR] [--cpu-prof DIR]
 *
 * - agent alone: one in-process agent (the local link's agent) starts N
 *   servers at once and resolves when all are ready.
 * - REST: `POST /api/models/servers/start-all` (waits until every server is
 *   ready) against the production server (`node scripts/start.mjs`, which
 *   builds first if needed), with exactly N models enabled and the same
 *   server settings. The two sides alternate rep by rep (after one warm-up
 *   each), so drift in the machine's load shifts both alike. Overhead =
 *   median(REST) − median(agent), and the median of the paired differences
 *   beside it. Target ≤ 50 ms. `--all` prints every rep.
 * - status: `GET /api/models/servers/status` with 16 servers running,
 *   sequential requests, p50 / p95. Target p50 ≤ 20 ms.
 * - `--baseline DIR`: a second app from another checkout (a worktree of the
 *   landed main, with node_modules and src/generated; built by its own
 *   scripts/start.mjs if needed) runs beside this one with the same models
 *   and ports, its own database and state folder; every rep runs the agent
 *   alone and both apps, in rotating order, so both overheads come from the
 *   same minutes of the machine.
 * - `--cpu-prof DIR`: the app(s) run with `node --cpu-prof` and write their
 *   profiles (.cpuprofile, Chrome DevTools) into DIR/this and DIR/baseline
 *   when they exit, and DIR/start-all-windows.json: each REST start-all's
 *   span in µs of CLOCK_MONOTONIC (the profiles' clock), to look at those
 *   spans alone.
 * - On Linux each start-all's CPU time of the app's process (agent
 *   included) is printed too: on a busy shared machine it moves far less
 *   than wall time.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createHostAgent } from "../host-agent/src/agent.ts";
import { writeTinyModel } from "../host-agent/src/gguf/tiny-model.ts";
import type { ServerSpecInput } from "../host-agent/src/protocol.ts";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { argValue, cpuMs, llamaServerBin, median, ms, percentile } from "./lib.ts";

const args = process.argv.slice(2);
// 15: on a shared 2-core machine 7 reps left the N=16 median tens of ms apart between runs.
const REPS = Number(argValue("--reps") ?? 15);
const SIZES = (argValue("--sizes") ?? "4,16").split(",").map(Number);
const STATUS_SAMPLES = Number(argValue("--status-samples") ?? 200);
const MAX = Math.max(...SIZES, 16);
const ROOT = path.resolve(import.meta.dirname, "..");
const BASELINE = argValue("--baseline");
const CPU_PROF = argValue("--cpu-prof");

// The settings both sides run with (the app's global defaults, with a small context and 1 thread per tiny server).
const SERVER = { ctxSize: 256, threads: 1, gpuLayers: 99, batchSize: 512, ubatchSize: 256, flashAttn: "on", loadMode: "mmap", parallel: 1, readinessDeadlineMs: 120_000, stopGraceMs: 10_000 } as const;

interface App {
  name: string;
  base: string;
  child: ChildProcess;
  ids: string[];
  lastHandlerMs: number;
  post(p: string, body?: unknown): Promise<unknown>;
  handlerTimes: Map<number, number[]>;
  /** CPU time the app's process used during each REST start-all (ms; NaN without /proc). */
  cpuTimes: Map<number, number[]>;
  restTimes: Map<number, number[]>;
  diffs: Map<number, number[]>;
}

/** Starts the production server of the checkout at `root` (its scripts/start.mjs builds first if needed) with its own database and state. */
async function startApp(root: string, name: string, dir: string, models: string, bin: string): Promise<App> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const cwd = path.join(dir, `app-${name}`);
  await mkdir(cwd, { recursive: true });
  const prof = CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(CPU_PROF, name)}`] : [];
  const child = spawn(process.execPath, ["--max-semi-space-size=2", ...prof, path.join(root, "scripts/start.mjs")], {
    cwd,
    env: {
      ...process.env,
      PORT: String(port),
      HOSTNAME: "127.0.0.1",
      DATABASE_URL: `file:${path.join(cwd, "app.db")}`,
      SYNAPSE_STATE_DIR: path.join(cwd, "app-state"),
      SYNAPSE_MODEL_ROOTS: models,
      LLAMA_SERVER_BIN: bin,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const deadline = Date.now() + 600_000; // includes a first `next build`
  for (;;) {
    const ok = await fetch(`${base}/api/health`).then((r) => r.ok, () => false);
    if (ok) break;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the app (${name}, ${root}) did not become healthy (see its log above)`);
    await sleep(200);
  }
  const app: App = {
    name,
    base,
    child,
    ids: [],
    lastHandlerMs: NaN,
    handlerTimes: new Map(),
    cpuTimes: new Map(),
    restTimes: new Map(),
    diffs: new Map(),
    async post(p, body) {
      const r = await fetch(`${base}${p}`, { method: "POST", headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await r.text();
      if (!r.ok) throw new Error(`${name}: ${p} answered ${r.status}: ${text.slice(0, 300)}`);
      app.lastHandlerMs = Number(/handler;dur=([\d.]+)/.exec(r.headers.get("server-timing") ?? "")?.[1] ?? NaN);
      return JSON.parse(text) as unknown;
    },
  };
  return app;
}

async function main() {
  const bin = llamaServerBin();
  const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-bench-cp-"));
  const models = path.join(dir, "models");
  await mkdir(models, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < MAX; i++) {
    const f = path.join(models, `m${i}.gguf`);
    await writeTinyModel(f);
    files.push(f);
  }
  const ports = await Promise.all(files.map(() => freePort()));
  const children: ChildProcess[] = [];
  try {
    // ---- agent alone: one run
    let run = 0;
    /** CPU time of this process (the agent alone, plus this script's little) per start. */
    const agentCpu = new Map<number, number[]>();
    const agentAlone = async (n: number): Promise<number> => {
      const agent = createHostAgent({ llamaServerBin: bin, stateDir: path.join(dir, `agent-${++run}`), modelRoots: [models], logMaxBytes: 10 << 20, healthIntervalMs: 5000, logLevel: "silent", adopt: false });
      await agent.ready;
      const specs: ServerSpecInput[] = files.slice(0, n).map((f, i) => ({ id: `m${i}`, modelPath: f, port: ports[i]!, ...SERVER }));
      const cpu0 = cpuMs(process.pid);
      const t0 = performance.now();
      await Promise.all(specs.map((spec) => agent.call("start", { spec })));
      const t = performance.now() - t0;
      agentCpu.set(n, [...(agentCpu.get(n) ?? []), cpuMs(process.pid) - cpu0]);
      await agent.call("stopAll", {});
      agent.close();
      return t;
    };

    /** Each REST start-all's span on CLOCK_MONOTONIC (µs, the clock of .cpuprofile timestamps): written beside the profiles. */
    const windows: { app: string; n: number; startUs: number; endUs: number }[] = [];
    // ---- the app(s): this checkout, and the baseline's when asked
    const apps: App[] = [await startApp(ROOT, "this", dir, models, bin)];
    children.push(apps[0]!.child);
    if (BASELINE) {
      const b = await startApp(path.resolve(BASELINE), "baseline", dir, models, bin);
      apps.push(b);
      children.push(b.child);
    }
    for (const app of apps) {
      for (const [i, f] of files.entries()) {
        const created = (await app.post("/api/trpc/models.create", { name: `m${i}`, filePath: f, port: ports[i], enabled: false, ctxSize: SERVER.ctxSize, threads: SERVER.threads })) as { result: { data: { id: string } } };
        app.ids.push(created.result.data.id);
      }
    }
    const restStartAll = async (app: App, n: number): Promise<number> => {
      const m0 = process.hrtime.bigint();
      const cpu0 = cpuMs(app.child.pid);
      const t0 = performance.now();
      const result = (await app.post("/api/models/servers/start-all")) as { ok: boolean; started: number };
      const t = performance.now() - t0;
      app.cpuTimes.set(n, [...(app.cpuTimes.get(n) ?? []), cpuMs(app.child.pid) - cpu0]);
      windows.push({ app: app.name, n, startUs: Number(m0 / 1000n), endUs: Number(process.hrtime.bigint() / 1000n) });
      app.handlerTimes.set(n, [...(app.handlerTimes.get(n) ?? []), app.lastHandlerMs]);
      if (!result.ok || result.started !== n) throw new Error(`${app.name}: start-all did not start ${n}: ${JSON.stringify(result).slice(0, 300)}`);
      await app.post("/api/models/servers/stop-all");
      return t;
    };
    // The sides take turns, rep by rep, in rotating order, so a machine that gets busier or quieter shifts all alike.
    const agentTimes = new Map<number, number[]>();
    const thisMinusBase = new Map<number, number[]>();
    for (const n of SIZES) {
      for (const app of apps) for (const [i, id] of app.ids.entries()) await app.post("/api/trpc/models.setEnabled", { id, enabled: i < n });
      await agentAlone(n); // warm-up, not counted: first spawns after a pause page the binary back in
      for (const app of apps) await restStartAll(app, n);
      const sides = [null, ...apps];
      for (let r = 0; r < REPS; r++) {
        process.stderr.write(`  N=${n} rep ${r + 1}/${REPS}\r`);
        let a = NaN;
        const got = new Map<App, number>();
        for (let k = 0; k < sides.length; k++) {
          const side = sides[(k + r) % sides.length]!;
          if (side === null) a = await agentAlone(n);
          else got.set(side, await restStartAll(side, n));
        }
        agentTimes.set(n, [...(agentTimes.get(n) ?? []), a]);
        for (const [app, b] of got) {
          app.restTimes.set(n, [...(app.restTimes.get(n) ?? []), b]);
          app.diffs.set(n, [...(app.diffs.get(n) ?? []), b - a]);
        }
        if (apps.length === 2) thisMinusBase.set(n, [...(thisMinusBase.get(n) ?? []), got.get(apps[0]!)! - got.get(apps[1]!)!]);
      }
    }

    // ---- status with 16 running
    const statusTimes = new Map<App, number[]>();
    for (const app of apps) {
      for (const [i, id] of app.ids.entries()) await app.post("/api/trpc/models.setEnabled", { id, enabled: i < 16 });
      await app.post("/api/models/servers/start-all");
      const times: number[] = [];
      for (let i = 0; i < STATUS_SAMPLES; i++) {
        const t0 = performance.now();
        const r = await fetch(`${app.base}/api/models/servers/status`);
        await r.arrayBuffer();
        times.push(performance.now() - t0);
      }
      statusTimes.set(app, times);
      await app.post("/api/models/servers/stop-all");
    }

    console.log(`\ncontrol plane start-all (REST, waits for ready) vs the agent alone — ${REPS} alternating reps, medians; load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")}`);
    console.log("   N  app       agent alone   REST start-all   overhead   median paired diff   (target: overhead ≤ 50 ms)");
    for (const n of SIZES) {
      const a = median(agentTimes.get(n)!);
      const aCpu = agentCpu.get(n)!;
      if (aCpu.every(Number.isFinite)) console.log(`${String(n).padStart(4)}  the agent alone's CPU time (this process) per start: median ${ms(median(aCpu))}`);
      for (const app of apps) {
        const b = median(app.restTimes.get(n)!);
        console.log(`${String(n).padStart(4)}  ${app.name.padEnd(8)}  ${ms(a).padStart(11)}  ${ms(b).padStart(15)}  ${ms(b - a).padStart(9)}  ${ms(median(app.diffs.get(n)!)).padStart(19)}`);
        const cpu = app.cpuTimes.get(n)!;
        if (cpu.every(Number.isFinite)) console.log(`      the app's CPU time (all its threads, agent included) per start-all: median ${ms(median(cpu))}`);
        if (args.includes("--all")) {
          console.log(`      agent [${agentTimes.get(n)!.map((x) => x.toFixed(0)).join(" ")}]  REST [${app.restTimes.get(n)!.map((x) => x.toFixed(0)).join(" ")}]`);
          console.log(`      of which in the route handler (Server-Timing) [${app.handlerTimes.get(n)!.slice(-REPS).map((x) => x.toFixed(0)).join(" ")}]`);
        }
      }
    }
    for (const [n, d] of thisMinusBase) {
      const cpu = apps[0]!.cpuTimes.get(n)!.slice(-REPS).map((c, i) => c - apps[1]!.cpuTimes.get(n)!.slice(-REPS)[i]!);
      console.log(`N=${n}: this minus baseline, paired by rep: wall median ${ms(median(d))} (IQR ${ms(percentile(d, 25))} to ${ms(percentile(d, 75))}); CPU median ${ms(median(cpu))} (IQR ${ms(percentile(cpu, 25))} to ${ms(percentile(cpu, 75))})`);
    }
    if (CPU_PROF) await mkdir(path.resolve(CPU_PROF), { recursive: true });
    if (CPU_PROF) await writeFile(path.join(path.resolve(CPU_PROF), "start-all-windows.json"), JSON.stringify(windows));
    for (const app of apps) {
      const t = statusTimes.get(app)!;
      console.log(`\n${app.name}: GET /api/models/servers/status with 16 running, ${STATUS_SAMPLES} sequential requests: p50 ${ms(percentile(t, 50))}, p95 ${ms(percentile(t, 95))} (target p50 ≤ 20 ms)`);
    }
  } finally {
    await Promise.all(
      children.map(async (c) => {
        if (c.exitCode !== null) return;
        c.kill("SIGTERM");
        await Promise.race([new Promise((r) => c.once("exit", r)), sleep(60_000)]);
      }),
    );
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
