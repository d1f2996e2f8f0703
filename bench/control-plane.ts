/**
 * Benchmark: the control plane's REST start-all against the host agent
 * alone, with the real llama-server and tiny models. Prints its figures; not
 * a timed test.
 *
 *   npx tsx bench/control-plane.ts [--reps 15] [--sizes 4,16] [--status-samples 200] [--all]
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
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createHostAgent } from "../host-agent/src/agent.ts";
import { writeTinyModel } from "../host-agent/src/gguf/tiny-model.ts";
import type { ServerSpecInput } from "../host-agent/src/protocol.ts";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { argValue, llamaServerBin, median, ms, percentile } from "./lib.ts";

const args = process.argv.slice(2);
// 15: on a shared 2-core machine 7 reps left the N=16 median tens of ms apart between runs.
const REPS = Number(argValue("--reps") ?? 15);
const SIZES = (argValue("--sizes") ?? "4,16").split(",").map(Number);
const STATUS_SAMPLES = Number(argValue("--status-samples") ?? 200);
const MAX = Math.max(...SIZES, 16);
const ROOT = path.resolve(import.meta.dirname, "..");

// The settings both sides run with (the app's global defaults, with a small context and 1 thread per tiny server).
const SERVER = { ctxSize: 256, threads: 1, gpuLayers: 99, batchSize: 512, ubatchSize: 256, flashAttn: "on", loadMode: "mmap", parallel: 1, readinessDeadlineMs: 120_000, stopGraceMs: 10_000 } as const;

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
  let app: ChildProcess | null = null;
  try {
    // ---- agent alone: one run
    let run = 0;
    const agentAlone = async (n: number): Promise<number> => {
      const agent = createHostAgent({ llamaServerBin: bin, stateDir: path.join(dir, `agent-${++run}`), modelRoots: [models], logMaxBytes: 10 << 20, healthIntervalMs: 5000, logLevel: "silent", adopt: false });
      await agent.ready;
      const specs: ServerSpecInput[] = files.slice(0, n).map((f, i) => ({ id: `m${i}`, modelPath: f, port: ports[i]!, ...SERVER }));
      const t0 = performance.now();
      await Promise.all(specs.map((spec) => agent.call("start", { spec })));
      const t = performance.now() - t0;
      await agent.call("stopAll", {});
      agent.close();
      return t;
    };

    // ---- the app
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    app = spawn(process.execPath, ["--max-semi-space-size=2", path.join(ROOT, "scripts/start.mjs")], {
      cwd: dir,
      env: {
        ...process.env,
        PORT: String(port),
        HOSTNAME: "127.0.0.1",
        DATABASE_URL: `file:${path.join(dir, "app.db")}`,
        SYNAPSE_STATE_DIR: path.join(dir, "app-state"),
        SYNAPSE_MODEL_ROOTS: models,
        LLAMA_SERVER_BIN: bin,
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const deadline = Date.now() + 300_000; // includes a first `next build`
    for (;;) {
      const ok = await fetch(`${base}/api/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (app.exitCode !== null || Date.now() > deadline) throw new Error("the app did not become healthy (see its log above)");
      await sleep(200);
    }
    let lastHandlerMs = NaN;
    const post = async (p: string, body?: unknown) => {
      const r = await fetch(`${base}${p}`, { method: "POST", headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await r.text();
      if (!r.ok) throw new Error(`${p} answered ${r.status}: ${text.slice(0, 300)}`);
      lastHandlerMs = Number(/handler;dur=([\d.]+)/.exec(r.headers.get("server-timing") ?? "")?.[1] ?? NaN);
      return JSON.parse(text) as unknown;
    };
    const ids: string[] = [];
    for (const [i, f] of files.entries()) {
      const created = (await post("/api/trpc/models.create", { name: `m${i}`, filePath: f, port: ports[i], enabled: false, ctxSize: SERVER.ctxSize, threads: SERVER.threads })) as { result: { data: { id: string } } };
      ids.push(created.result.data.id);
    }
    const handlerTimes = new Map<number, number[]>();
    const restStartAll = async (n: number): Promise<number> => {
      const t0 = performance.now();
      const result = (await post("/api/models/servers/start-all")) as { ok: boolean; started: number };
      const t = performance.now() - t0;
      handlerTimes.set(n, [...(handlerTimes.get(n) ?? []), lastHandlerMs]);
      if (!result.ok || result.started !== n) throw new Error(`start-all did not start ${n}: ${JSON.stringify(result).slice(0, 300)}`);
      await post("/api/models/servers/stop-all");
      return t;
    };
    // The two sides alternate, rep by rep, so a machine that gets busier or quieter shifts both alike.
    const agentTimes = new Map<number, number[]>();
    const restTimes = new Map<number, number[]>();
    const diffs = new Map<number, number[]>();
    for (const n of SIZES) {
      for (const [i, id] of ids.entries()) await post("/api/trpc/models.setEnabled", { id, enabled: i < n });
      await agentAlone(n); // warm-up, not counted: first spawns after a pause page the binary back in
      await restStartAll(n);
      for (let r = 0; r < REPS; r++) {
        process.stderr.write(`  N=${n} rep ${r + 1}/${REPS}\r`);
        let a: number, b: number;
        if (r % 2 === 0) {
          a = await agentAlone(n);
          b = await restStartAll(n);
        } else {
          b = await restStartAll(n);
          a = await agentAlone(n);
        }
        agentTimes.set(n, [...(agentTimes.get(n) ?? []), a]);
        restTimes.set(n, [...(restTimes.get(n) ?? []), b]);
        diffs.set(n, [...(diffs.get(n) ?? []), b - a]);
      }
    }

    // ---- status with 16 running
    for (const [i, id] of ids.entries()) await post("/api/trpc/models.setEnabled", { id, enabled: i < 16 });
    await post("/api/models/servers/start-all");
    const statusTimes: number[] = [];
    for (let i = 0; i < STATUS_SAMPLES; i++) {
      const t0 = performance.now();
      const r = await fetch(`${base}/api/models/servers/status`);
      await r.arrayBuffer();
      statusTimes.push(performance.now() - t0);
    }
    await post("/api/models/servers/stop-all");

    console.log(`\ncontrol plane start-all (REST, waits for ready) vs the agent alone — ${REPS} alternating reps, medians`);
    console.log("   N  agent alone   REST start-all   overhead   median paired diff   (target: overhead ≤ 50 ms)");
    for (const n of SIZES) {
      const a = median(agentTimes.get(n)!);
      const b = median(restTimes.get(n)!);
      console.log(`${String(n).padStart(4)}  ${ms(a).padStart(11)}  ${ms(b).padStart(15)}  ${ms(b - a).padStart(9)}  ${ms(median(diffs.get(n)!)).padStart(19)}`);
      if (args.includes("--all")) {
        console.log(`      agent [${agentTimes.get(n)!.map((x) => x.toFixed(0)).join(" ")}]  REST [${restTimes.get(n)!.map((x) => x.toFixed(0)).join(" ")}]`);
        console.log(`      of which in the route handler (Server-Timing) [${handlerTimes.get(n)!.slice(-REPS).map((x) => x.toFixed(0)).join(" ")}]`);
      }
    }
    console.log(`\nGET /api/models/servers/status with 16 running, ${STATUS_SAMPLES} sequential requests: p50 ${ms(percentile(statusTimes, 50))}, p95 ${ms(percentile(statusTimes, 95))} (target p50 ≤ 20 ms)`);
  } finally {
    if (app && app.exitCode === null) {
      app.kill("SIGTERM");
      await Promise.race([new Promise((r) => app!.once("exit", r)), sleep(60_000)]);
    }
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
