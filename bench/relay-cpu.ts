/**
 * Benchmark: the relay's CPU time per streamed answer at concurrency 16,
 * beside nginx in front of the same llama-server, and beside another
 * checkout's relay. Prints figures; asserts nothing.
 *
 *   npx tsx bench/relay-cpu.ts [--baseline DIR] [--tokens 64] [--streams 192] [--rounds 6] [--concurrency 16]
 *   npx tsx bench/relay-cpu.ts --short [--tokens 4] [--streams 800] ...
 *   npx tsx bench/relay-cpu.ts --also-node /path/to/node22/bin/node ...
 *   npx tsx bench/relay-cpu.ts --short --floor ...   (one more leg: bench/node-pipe.ts, a bare byte pipe on Node)
 *
 * `--short`: short chat completions, not streamed, on kept-alive
 * connections (as bench/gateway.ts's c=16 latency phase sends them), with
 * each leg's p50 and its added p50 over direct beside the CPU per request.
 *
 * Why: on the 2-core machine bench/gateway.ts runs on, the streamed
 * throughput share (target ≥ 97 % of direct) is set by the CPU the proxy
 * takes from llama-server and the client, and its figure moves several
 * points between runs. The CPU time per stream moves far less, and it is
 * what a change to the relay changes.
 *
 * The relay is bench/relay-serve.ts (the gateway's fast path and raw
 * upstream over a fixed one-model fleet: no Next, no database, no figures),
 * bundled with esbuild for each checkout (its `../src/` imports taken from
 * that checkout, as scripts/build-gateway.mjs bundles the gateway for the
 * image) and run in a process of its own. nginx: Debian's (`apt-get install
 * -y nginx`), one worker, keep-alive upstream (bench/proxies.ts); skipped
 * when it is not installed.
 *
 * llama-server: the tiny model, context 4096, 16 slots, 1 thread. Each round
 * sends `--streams` streamed chat completions of `--tokens` tokens through
 * each leg in turn (order rotating by round), `--concurrency` at a time,
 * each on a new connection (llama-server closes a streamed answer's
 * connection: every leg alike). Round 0 warms up and is not counted.
 *
 * Figures per leg: CPU time per stream (ms; every thread of the relay's
 * process, nginx's master and worker; /proc/PID/task/TID/schedstat), median
 * and IQR over the rounds; tokens/s as context (it is the noisy figure);
 * and this relay's CPU over the baseline's, paired by round.
 *
 * Measured (2 cores, load 4-8 with a trial of the app running beside it;
 * `--baseline` = 70cf638, this = the commit adding this file): CPU a
 * 64-token stream nginx 2.07 ms, this relay 3.41, the baseline's 3.62;
 * paired this/baseline 0.881 (IQR 0.88-0.98). The change between them: one
 * write to the client per read of the server and one copy of its bytes, the
 * chunk size read byte by byte, a stream's head written with its first event.
 *
 * `--short`, measured (2 cores, load 2.4-2.8, 6 rounds of 800): CPU a
 * request nginx 0.063 ms, this relay 0.178 ms; added p50 at c=16 nginx
 * +2.23 ms, relay +2.74 ms. At c=16 the 16 answers of one decode step come
 * back together and a one-thread proxy handles them in turn, so its CPU per
 * request shows in the p50 about eight times over.
 *
 * `--short --floor`, measured (2 cores, load ~4, 6 rounds of 800): CPU a
 * request nginx 0.081 ms, node-pipe (bench/node-pipe.ts: no parsing, no
 * routing) 0.130 ms, this relay 0.260 ms; on a quiet machine (a /tmp harness,
 * 3 × 3000 requests) node-pipe 0.093–0.106 ms, the relay 0.180–0.220 ms,
 * nginx 0.065 ms. The c=16 target (gateway ≤ nginx's added p50 + 0.3 ms)
 * allows about 0.3 / 8 ≈ 0.04 ms of CPU a request over nginx's: about what
 * Node's own sockets take (node-pipe − nginx ≈ 0.03–0.05 ms), before any of
 * the gateway's own work (relay − node-pipe ≈ 0.09–0.13 ms).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { build, type Plugin } from "esbuild";
import { writeTinyModel } from "../host-agent/src/gguf/tiny-model.ts";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { argValue, cpuMs, llamaServerBin, percentile } from "./lib.ts";
import { startNginx, stopChild, until } from "./proxies.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const BASELINE = argValue("--baseline");
/** `--also-node PATH`: this checkout's relay once more, run by another Node binary (the image's Node 22 beside the machine's). */
const ALSO_NODE = argValue("--also-node");
const SHORT = process.argv.includes("--short");
/** `--floor`: one more leg, a bare byte pipe in Node (bench/node-pipe.ts): the least any relay on Node costs. */
const FLOOR = process.argv.includes("--floor");
const TOKENS = Number(argValue("--tokens") ?? (SHORT ? 4 : 64));
const STREAMS = Number(argValue("--streams") ?? (SHORT ? 800 : 192));
const ROUNDS = Number(argValue("--rounds") ?? 6);
const CONCURRENCY = Number(argValue("--concurrency") ?? 16);
const BODY = JSON.stringify({ model: "bench", messages: [{ role: "user", content: "hi" }], max_tokens: TOKENS, stream: !SHORT, ignore_eos: true, grammar: "root ::= [a-z]+" });

interface Leg {
  name: string;
  port: number;
  /** Whose CPU time is counted (none for direct), with its child processes (nginx's worker). */
  pid: number | null;
  children: boolean;
  cpu: number[];
  tokensPerS: number[];
  /** --short: every request's latency (ms), all counted rounds. */
  latencies: number[];
  /** --short: kept-alive connections, at most the concurrency. */
  agent: http.Agent | false;
}

/** Bundles bench/relay-serve.ts with its `../src/` imports from `checkout`; returns the bundle's path. */
async function bundleRelay(checkout: string, out: string): Promise<string> {
  const entry = path.join(ROOT, "bench", "relay-serve.ts");
  const fromCheckout: Plugin = {
    name: "relay-from-checkout",
    setup(b) {
      // The bench folder's own files (relay-serve.ts, one-model-fleet.ts) take the checkout's sources.
      b.onResolve({ filter: /^\.\.\/src\// }, (args) => (path.dirname(args.importer) === path.dirname(entry) ? { path: path.join(checkout, args.path.slice(3)) } : undefined));
    },
  };
  await build({ entryPoints: [entry], outfile: out, bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "warning", plugins: [fromCheckout] });
  return out;
}

/** Bundles one self-contained bench file (no checkout's sources); returns the bundle's path. */
async function bundleFile(entry: string, out: string): Promise<string> {
  await build({ entryPoints: [entry], outfile: out, bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "warning" });
  return out;
}

/** Starts a relay bundle in front of `llamaPort`; resolves with its process and port once it listens (10 s deadline). */
async function startRelay(bundle: string, llamaPort: number, node = process.execPath): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(node, [bundle], { env: { ...process.env, LLAMA_PORT: String(llamaPort) }, stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${bundle}: no port within 10 s`)), 10_000);
    lines.once("line", (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once("exit", (code) => reject(new Error(`${bundle} exited with code ${code}`)));
  });
  return { child, port };
}

/** One answer, read to its end: streamed on a connection of its own, or (--short) on the leg's kept-alive ones. */
function stream(port: number, agent: http.Agent | false): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: "/v1/chat/completions", method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(BODY) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`port ${port}: status ${res.statusCode}`))));
      res.on("error", reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`port ${port}: no answer within 60 s`)));
    req.on("error", reject);
    req.end(BODY);
  });
}

async function round(leg: Leg): Promise<{ cpuPerStream: number; tokensPerS: number; latencies: number[] }> {
  const latencies: number[] = [];
  const cpu0 = leg.pid === null ? 0 : cpuMs(leg.pid, { children: leg.children });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < STREAMS) {
        next++;
        const t = performance.now();
        await stream(leg.port, leg.agent);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = leg.pid === null ? Number.NaN : cpuMs(leg.pid, { children: leg.children }) - cpu0;
  return { cpuPerStream: cpu / STREAMS, tokensPerS: (STREAMS * TOKENS) / seconds, latencies };
}

/** --short: a leg's kept-alive connections; streamed answers each get a connection of their own (false). */
const keptAlive = (): http.Agent | false => (SHORT ? new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY }) : false);

const med = (xs: number[]) => percentile(xs, 50);
const iqr = (xs: number[]) => `${percentile(xs, 25).toFixed(2)}–${percentile(xs, 75).toFixed(2)}`;

async function main(): Promise<void> {
  const bin = llamaServerBin();
  const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-bench-relay-"));
  const children: ChildProcess[] = [];
  const legs: Leg[] = [];
  try {
    const file = path.join(dir, "tiny.gguf");
    await writeTinyModel(file);
    const llamaPort = await freePort();
    const llama = spawn(bin, ["-m", file, "--host", "127.0.0.1", "--port", String(llamaPort), "-c", "4096", "-t", "1", "-np", "16", "--alias", "bench"], { stdio: "ignore" });
    children.push(llama);
    await until("llama-server", async () => (await fetch(`http://127.0.0.1:${llamaPort}/health`)).ok, 30_000, 50);

    legs.push({ name: "direct", port: llamaPort, pid: null, children: false, cpu: [], tokensPerS: [], latencies: [], agent: keptAlive() });
    const nginx = await startNginx(dir, llamaPort);
    if (nginx) {
      children.push(nginx.child);
      legs.push({ name: "nginx", port: nginx.port, pid: nginx.child.pid!, children: true, cpu: [], tokensPerS: [], latencies: [], agent: keptAlive() });
    } else process.stderr.write("nginx not found: the nginx leg is skipped (install it: apt-get install -y nginx)\n");
    for (const [name, checkout] of [["relay", ROOT], ...(BASELINE ? [["baseline", path.resolve(BASELINE)]] : [])] as const) {
      process.stderr.write(`bundling the relay of ${checkout} ...\n`);
      const relay = await startRelay(await bundleRelay(checkout, path.join(dir, `${name}.mjs`)), llamaPort);
      children.push(relay.child);
      legs.push({ name, port: relay.port, pid: relay.child.pid!, children: false, cpu: [], tokensPerS: [], latencies: [], agent: keptAlive() });
    }
    if (FLOOR) {
      // The least a Node relay costs (bench/node-pipe.ts): what of the relay's CPU is Node's own, and what is the gateway's.
      const pipe = await startRelay(await bundleFile(path.join(ROOT, "bench", "node-pipe.ts"), path.join(dir, "node-pipe.mjs")), llamaPort);
      children.push(pipe.child);
      legs.push({ name: "node-pipe", port: pipe.port, pid: pipe.child.pid!, children: false, cpu: [], tokensPerS: [], latencies: [], agent: keptAlive() });
    }
    if (ALSO_NODE) {
      const version = execFileSync(ALSO_NODE, ["--version"], { encoding: "utf8" }).trim();
      const relay = await startRelay(path.join(dir, "relay.mjs"), llamaPort, ALSO_NODE);
      children.push(relay.child);
      legs.push({ name: `relay@${version}`, port: relay.port, pid: relay.child.pid!, children: false, cpu: [], tokensPerS: [], latencies: [], agent: keptAlive() });
    }

    for (let r = 0; r <= ROUNDS; r++) {
      for (let k = 0; k < legs.length; k++) {
        const leg = legs[(k + r) % legs.length]!;
        process.stderr.write(`  round ${r}/${ROUNDS} ${leg.name}            \r`);
        const got = await round(leg);
        if (r === 0) continue; // warm-up: the JIT, the pools
        leg.cpu.push(got.cpuPerStream);
        leg.tokensPerS.push(got.tokensPerS);
        leg.latencies.push(...got.latencies);
      }
    }
    process.stderr.write("\n");

    const load = os.loadavg().map((x) => x.toFixed(1)).join(" ");
    const what = SHORT ? "request" : "stream";
    const out: string[] = [`relay CPU per ${what}: ${STREAMS} ${SHORT ? "short requests (not streamed, kept-alive connections)" : "streams"} × ${TOKENS} tokens a round at c=${CONCURRENCY}, ${ROUNDS} rounds per leg (rotating order); ${os.availableParallelism()} cores, node ${process.version}; load average ${load}`];
    const direct = med(legs[0]!.tokensPerS);
    for (const leg of legs) {
      const cpu = leg.pid === null ? "" : `CPU ${med(leg.cpu).toFixed(SHORT ? 3 : 2)} ms a ${what} (IQR ${iqr(leg.cpu)})   `;
      const latency = SHORT ? `   p50 ${med(leg.latencies).toFixed(2)} ms (${leg === legs[0] ? "direct" : `+${(med(leg.latencies) - med(legs[0]!.latencies)).toFixed(2)}`})  p99 ${percentile(leg.latencies, 99).toFixed(2)} ms` : "";
      out.push(`  ${leg.name.padEnd(15)} ${cpu}${med(leg.tokensPerS).toFixed(0)} tokens/s (${((med(leg.tokensPerS) / direct) * 100).toFixed(1)} % of direct)${latency}`);
    }
    const relay = legs.find((l) => l.name === "relay")!;
    const base = legs.find((l) => l.name === "baseline");
    const ngx = legs.find((l) => l.name === "nginx");
    if (base) {
      const ratios = relay.cpu.map((c, i) => c / base.cpu[i]!);
      out.push(`  relay/baseline CPU, paired by round: median ${med(ratios).toFixed(3)} (IQR ${iqr(ratios)})`);
    }
    if (ngx) out.push(`  relay/nginx CPU: ${(med(relay.cpu) / med(ngx.cpu)).toFixed(2)}`);
    const pipe = legs.find((l) => l.name === "node-pipe");
    if (pipe) out.push(`  relay − node-pipe CPU (the gateway's own code, beyond what Node's sockets cost): ${(med(relay.cpu) - med(pipe.cpu)).toFixed(3)} ms a ${what}${ngx ? `; node-pipe − nginx: ${(med(pipe.cpu) - med(ngx.cpu)).toFixed(3)} ms` : ""}`);
    process.stdout.write(`${out.join("\n")}\n`);
  } finally {
    for (const leg of legs) if (leg.agent) leg.agent.destroy();
    await Promise.all(children.map((c) => stopChild(c, 5_000)));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
