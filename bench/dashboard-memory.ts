/**
 * Benchmark: the app's memory (RSS of the app process, from /proc) after
 * start and with 16 llama-servers running. Prints figures; no assertions.
 * Target: ≤ 250 MB in both.
 *
 *   npx tsx bench/dashboard-memory.ts [--image <dir>] [--servers 16]
 *
 * Real llama-server (LLAMA_SERVER_BIN, or the cached build from
 * scripts/build-llama-server.sh) and the tiny model. Phases:
 *   1. idle: started, health answered, settled 3 s;
 *   2. one dashboard: the fleet page rendered, the live event stream open;
 *   3. N servers ready (START ALL ENABLED through the API), the stream open,
 *      sampled for 10 s (peak and last);
 *   4. after STOP ALL.
 * llama-server processes are separate; their memory is not the app's and is
 * not counted.
 */
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { writeTinyModel } from "../host-agent/src/gguf/tiny-model.ts";
import { appImage, rss, startBenchApp, type BenchApp, type Rss } from "./dashboard-app.ts";
import { argValue, llamaServerBin } from "./lib.ts";

const TARGET_MB = 250;
const N = Number(argValue("--servers") ?? 16);
const MB = (b: number) => (b / 1024 / 1024).toFixed(1);

/** Holds the live event stream open the way the dashboard does (SSE). */
function openEventStream(app: BenchApp): { close: () => void; events: () => number } {
  const ac = new AbortController();
  let events = 0;
  void (async () => {
    try {
      const res = await fetch(`${app.url}/api/trpc/servers.events?input=${encodeURIComponent(JSON.stringify({}))}`, { headers: { accept: "text/event-stream" }, signal: ac.signal });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        events += (decoder.decode(value).match(/^data:/gm) ?? []).length;
      }
    } catch {
      // closed
    }
  })();
  return { close: () => ac.abort(), events: () => events };
}

async function waitAll(app: BenchApp, want: (state: string) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await app.query<{ state: string; name: string; lastError: string | null }[]>("servers.status");
    if (rows.length > 0 && rows.every((r) => want(r.state))) return;
    if (Date.now() > deadline) throw new Error(`servers did not settle: ${rows.map((r) => `${r.name}=${r.state}${r.lastError ? ` (${r.lastError})` : ""}`).join(", ")}`);
    await sleep(250);
  }
}

async function main() {
  const bin = llamaServerBin();
  const image = await appImage();
  const app = await startBenchApp(image, { LLAMA_SERVER_BIN: bin });
  const figures: [string, Rss][] = [];
  try {
    await sleep(3000);
    figures.push(["after start (idle)", await rss(app.pid)]);

    await (await fetch(`${app.url}/`)).text();
    const stream = openEventStream(app);
    await sleep(2000);
    figures.push(["one dashboard (page + event stream)", await rss(app.pid)]);

    await app.mutation("settings.update", { ctxSize: 256, gpuLayers: 0, threads: 1, batchSize: 64, ubatchSize: 64, flashAttn: "off", parallel: 1 });
    const hosts = await app.query<{ id: string }[]>("hosts.list");
    for (let i = 0; i < N; i++) {
      const file = path.join(app.modelRoot, `bench-${i}.gguf`);
      await writeTinyModel(file);
      await app.mutation("models.create", { name: `bench-${i}`, hostId: hosts[0]?.id, filePath: file, port: 0, enabled: true }).catch(async () => {
        // port 0 is refused: pick explicit ports instead
        await app.mutation("models.create", { name: `bench-${i}`, hostId: hosts[0]?.id, filePath: file, port: 28_100 + i, enabled: true });
      });
    }
    const t0 = performance.now();
    await app.mutation("servers.startAll", { wait: true });
    await waitAll(app, (s) => s === "ready", 180_000);
    const startMs = performance.now() - t0;
    let peak: Rss = { total: 0, anon: 0, file: 0 };
    let last = peak;
    for (let i = 0; i < 20; i++) {
      last = await rss(app.pid);
      if (last.total > peak.total) peak = last;
      await sleep(500);
    }
    figures.push([`${N} servers ready (last)`, last]);
    figures.push([`${N} servers ready (peak over 10 s)`, peak]);

    await app.mutation("servers.stopAll");
    await waitAll(app, (s) => s === "stopped", 60_000);
    await sleep(1000);
    figures.push(["after STOP ALL", await rss(app.pid)]);
    await sleep(10_000);
    figures.push(["after STOP ALL, 10 s later", await rss(app.pid)]);
    stream.close();

    console.log(`app RSS (pid ${app.pid}; llama-server processes not counted)`);
    console.log(`  ${"".padEnd(36)} ${"RSS".padStart(7)}     ${"anon".padStart(7)}     ${"file".padStart(7)}`);
    for (const [label, r] of figures) console.log(`  ${label.padEnd(36)} ${MB(r.total).padStart(7)} MB  ${MB(r.anon).padStart(7)} MB  ${MB(r.file).padStart(7)} MB`);
    console.log(`  (start all of ${N}: ${Math.round(startMs)} ms; events seen on the stream: ${stream.events()})`);
    const target = (label: string, r: Rss) => console.log(`${label}: ${MB(r.total)} MB (target ≤ ${TARGET_MB} MB: ${r.total / 1024 / 1024 <= TARGET_MB ? "met" : "NOT met"})`);
    target("after start", figures[0]![1]);
    target(`with ${N} servers running (peak)`, peak);
  } finally {
    await app.stop();
    await image.dispose();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
