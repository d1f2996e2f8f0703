/**
 * Benchmark: the gateway's cost, against the same llama-server reached
 * directly and through nginx (a plain reverse proxy with a keep-alive
 * upstream). Prints figures beside the issue's targets; asserts nothing.
 *
 *   npx tsx bench/gateway.ts [--reps 8] [--per-rep 50] [--warm-up 3000] [--next-route] [--cold-reps 5]
 *   npx tsx bench/gateway.ts --only cold [--cold-reps 15] [--baseline DIR] [--image DIR] [--keep-image]
 *   npx tsx bench/gateway.ts --only streams,c16 [--no-ssh] [--delays-out FILE]
 *
 * The app is the production build in the image's layout (test/harness/app-build.ts),
 * started with the image's command, the real llama-server and the tiny model
 * (context 4096, 16 slots, 1 thread). Legs alternate batch by batch, in a
 * rotating order, so drift in the machine's load shifts every leg alike.
 *
 * - Added latency of a short non-streamed chat completion (4 tokens),
 *   p50 / p99 at concurrency 1 and 16: leg minus direct. At c=1 the legs
 *   also take turns request by request and the added latency is paired
 *   within each round (steadier on a busy machine); bench/gateway-micro.ts
 *   measures the gateway's own code path alone the same way.
 *   Target: gateway ≤ nginx's added p50 + 0.3 ms.
 *   At c=16 each rep runs every leg once, so the reps pair the legs: gateway −
 *   nginx (and the ssh leg's added p50 − the local one's) is printed as the
 *   median over reps with its 95 % CI, and called met only when the whole CI
 *   is within the target. Beside it, the CPU each leg's requests cost, per
 *   request and per process (this client, the app's main thread and its other
 *   threads, llama-server, nginx, sshd, the ssh host's agent, the rest of the
 *   machine; /proc, Linux): where a proxy's time goes, and what it takes from
 *   llama-server on a machine whose cores they share.
 * - Streamed (64 tokens, `timings_per_token`): time to first chunk; and
 *   the delay each chunk gets: client arrival minus the server's own
 *   `predicted_ms` stamp of that token, less the stream's smallest such
 *   difference (so a leg's figure is what it adds to a chunk on top of the
 *   best chunk of the same stream), p50 / p99 over all chunks.
 *   Target: ≤ 1 ms p99 more than direct.
 * - Streamed throughput at concurrency 16 (tokens/s) as a share of direct.
 *   Target ≥ 97 %: per rep (each rep runs every leg once), the share's median
 *   with its 95 % CI, called met only when the whole CI is at or above 97 %;
 *   and the gateway's share less nginx's, paired rep by rep. Beside it, the CPU time each leg's streams cost the app
 *   process (its own threads, not llama-server: for direct and nginx, what
 *   the app does with llama-server's log lines) and nginx (master and
 *   workers), per stream (Linux, /proc/PID/task/TID/schedstat): on a
 *   machine whose cores llama-server and the client already fill, a
 *   proxy's CPU is taken from them.
 * - On-demand cold start: the first request to a stopped on-demand model
 *   until its full answer, against launching llama-server directly, polling
 *   /health every 5 ms and sending the same request. Target ratio ≤ 1.10.
 *   Per rep the legs take turns in rotating order; each rep's figures are
 *   printed, and the ratio as the median of the per-rep ratios beside the
 *   ratio of the medians.
 * - Resident memory (VmRSS, Linux): the app after the warm-up and after
 *   the throughput runs, and nginx's master and workers, printed beside
 *   the CPU figures (no target; the price of each data path).
 * - Warm-up (`--warm-up N`, default 3000): before any figure, N short
 *   requests per leg at concurrency 4 and N/50 streams of 16 tokens at 16. A new app's
 *   JIT compiles for its first few thousand requests: measured with
 *   /proc/PID/task/TID/schedstat (2 cores, c=1), V8's background threads
 *   took ~300 µs of CPU per gateway request over its first 1000, and
 *   50-110 µs after 3000, CPU taken from llama-server and the client.
 *   nginx has no such phase; the figures are the gateway a user runs for
 *   hours. The warm-up's own latency is printed apart (p50 of its first
 *   and last 500 requests per leg).
 * - `--only PHASES`: those phases alone, comma-separated from c1, c16, streams,
 *   throughput, cold (the warm-up runs before any but cold; `--only cold`
 *   starts no warm legs, no nginx, no ssh).
 * - `--baseline DIR`: one more cold-start leg, the app built from another
 *   checkout DIR (or an image folder already built from one: its own
 *   server.js), run beside this one and alternated with it rep by rep, so a
 *   change is measured against its base in one run.
 * - `--image DIR`: this checkout's app already built into an image folder
 *   (skips the build; left in place); `--keep-image`: the build made here is
 *   left in place and its folder printed (for `--image` or `--baseline` later).
 * - `--next-route`: the build also carries a Next App Router route handler
 *   that proxies with fetch (src/proxy.ts runs in front of it, as for every
 *   route), the alternative to the front path; it is measured as one more leg.
 * - `gateway-ssh`: through the gateway to a model on a host reached over a
 *   real sshd on loopback (bench/gateway-ssh-host.ts: the key line of
 *   setup-ssh.sh --model-ports, the real wrapper and agent), the same tiny
 *   model and settings on a port of its own; its figures print beside the
 *   local gateway's. That server is another llama-server process, whose
 *   speed differs from the local one's, so the `direct-ssh` leg reaches it
 *   directly and the ssh leg's added latency, chunk delay and throughput
 *   share are taken against it (against the local server, the ssh leg once
 *   came out 3 ms faster than direct). Target: at most 1 ms more added
 *   latency than local.
 *   `--no-ssh` skips it.
 *
 * - Failed requests (a status other than 200, or a connection error) are
 *   left out of the figures and printed per leg and phase after them; a
 *   throughput share beside a leg that lost streams is marked as not
 *   comparable. llama-server closes its connection after every streamed
 *   answer (though its headers say keep-alive), so the client does not use
 *   a streamed answer's connection again, on every leg alike; a request
 *   that still meets a kept-alive socket the server closed is sent again
 *   once, and counted.
 *
 * nginx: /usr/sbin/nginx (Debian's `nginx` package: `apt-get install -y nginx`);
 * without it that leg is skipped with that advice.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { Socket } from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { writeTinyModel } from "../host-agent/src/gguf/tiny-model.ts";
import { pidsRunning } from "../host-agent/test/harness/fixtures.ts";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { buildAppImage, isAppImage, removeAppImage, START_COMMAND } from "../test/harness/app-build.ts";
import { startSshBenchHost, type SshBenchHost } from "./gateway-ssh-host.ts";
import { argValue, cpuByProcess, cpuMs, cpuSpent, llamaServerBin, ms, percentile, type ProcessCpu, rssMb } from "./lib.ts";
import { startNginx, stopChild, until } from "./proxies.ts";

const REPS = Number(argValue("--reps") ?? 8);
const PER_REP = Number(argValue("--per-rep") ?? 50);
const COLD_REPS = Number(argValue("--cold-reps") ?? 5);
const WARM_UP = Number(argValue("--warm-up") ?? 3000);
const NEXT_ROUTE = process.argv.includes("--next-route");
/** The measured phases, in the order they run; `--only a,b` runs those alone (the warm-up always runs before any warm phase). */
const PHASES = ["c1", "c16", "streams", "throughput", "cold"] as const;
type Phase = (typeof PHASES)[number];
const ONLY = argValue("--only");
const only = ONLY === undefined ? [...PHASES] : ONLY.split(",").map((s) => s.trim());
const unknownPhase = only.find((p) => !(PHASES as readonly string[]).includes(p));
if (unknownPhase !== undefined || only.length === 0) throw new Error(`--only takes phases from ${PHASES.join(", ")}, comma-separated (got ${JSON.stringify(ONLY)})`);
const RUN = new Set(only as Phase[]);
const COLD_ONLY = !PHASES.some((p) => p !== "cold" && RUN.has(p));
const SSH_LEG = !process.argv.includes("--no-ssh") && !COLD_ONLY;
const IMAGE = argValue("--image");
const BASELINE = argValue("--baseline");
const KEEP_IMAGE = process.argv.includes("--keep-image");
/** `--delays-out FILE`: every streamed chunk's delay as JSON lines {leg, at (epoch ms), delayMs}, to look for what the slow ones share. */
const DELAYS_OUT = argValue("--delays-out");
const ROOT = path.resolve(import.meta.dirname, "..");
const GRAMMAR = "root ::= [a-z]+";

const NEXT_ROUTE_FILE = `// bench/gateway.ts --next-route: the gateway's alternative, a Next route handler proxying with fetch.
export const dynamic = "force-dynamic";
async function handle(req: Request, ctx: { params: Promise<{ path: string[] }> }): Promise<Response> {
  const { path } = await ctx.params;
  const body = await req.text();
  const port = (JSON.parse(body) as { port?: number }).port; // as the gateway reads "model"
  const r = await fetch(\`http://127.0.0.1:\${port}/\${path.join("/")}\`, { method: "POST", headers: { "content-type": "application/json" }, body, signal: req.signal });
  return new Response(r.body, { status: r.status, headers: { "content-type": r.headers.get("content-type") ?? "application/json" } });
}
export const POST = handle;
`;

interface Leg {
  name: string;
  base: string;
  path: string;
  agent: http.Agent;
  /** The `model` this leg's requests name, when not the local "bench" (the ssh leg's model). */
  model?: string;
  /** The leg it is compared with (its own server reached directly); default "direct". */
  directLeg?: string;
}

/** The leg a leg's added latency, chunk delay and throughput share are taken against. */
const directOf = (leg: Leg) => leg.directLeg ?? "direct";
/** A leg that is some server reached directly (a reference, not a proxy). */
const isDirect = (leg: Leg) => leg.name.startsWith("direct");

/** Requests sent again because a kept-alive socket was closed by the server as it was reused (per leg; printed). */
const resent = new Map<string, number>();

/**
 * Sockets that have carried a whole answer. llama-server (its cpp-httplib) closes the connection after a
 * streamed answer although its headers say keep-alive, so the next request on that socket meets a reset.
 * Node's `req.reusedSocket` is false when a request waited in the agent's queue for a freed socket, so
 * it cannot tell that case; this set can.
 */
const usedSockets = new WeakSet<Socket>();

/**
 * Failed requests per leg and phase (a status other than 200, or a connection error that a resend did
 * not cure): left out of the figures, and always printed with them.
 */
const failures = new Map<string, Map<string, string[]>>();

function fail(leg: Leg, phase: string, err: unknown): void {
  const phases = failures.get(leg.name) ?? new Map<string, string[]>();
  failures.set(leg.name, phases);
  phases.set(phase, [...(phases.get(phase) ?? []), err instanceof Error ? err.message : String(err)]);
}

function failedIn(leg: string, phase: string): number {
  return failures.get(leg)?.get(phase)?.length ?? 0;
}

function post(leg: Leg, body: string, onChunk?: (chunk: Buffer, at: number) => void, retry = true): Promise<{ status: number; ms: number; firstMs: number; text: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = NaN;
    let onUsedSocket = false;
    if (leg.model) body = body.replace('"model":"bench"', JSON.stringify({ model: leg.model }).slice(1, -1));
    const u = new URL(leg.base + leg.path);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: "POST", agent: leg.agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
      const parts: Buffer[] = [];
      const socket = res.socket; // by 'end' the answer is detached from it
      res.on("data", (c: Buffer) => {
        const at = performance.now();
        if (Number.isNaN(first)) first = at - t0;
        parts.push(c);
        onChunk?.(c, at);
      });
      res.on("end", () => {
        // A streamed answer's connection is closed by llama-server: not used again, on every leg alike
        // (as the gateway's upstream does; destroyed before the agent frees it on the next tick).
        if (String(res.headers["content-type"] ?? "").startsWith("text/event-stream")) socket.destroy();
        else usedSockets.add(socket);
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, firstMs: first, text: Buffer.concat(parts).toString() });
      });
      res.on("error", reject);
    });
    req.on("socket", (s: Socket) => (onUsedSocket = usedSockets.has(s)));
    req.on("error", (err: NodeJS.ErrnoException) => {
      // The keep-alive race every HTTP client meets (Node's docs retry the same way): nothing reached
      // the server, so the request goes again, once; the time of the failed try is not counted.
      if (retry && (onUsedSocket || req.reusedSocket) && Number.isNaN(first) && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
        resent.set(leg.name, (resent.get(leg.name) ?? 0) + 1);
        post(leg, body, onChunk, false).then(resolve, reject);
      } else reject(err);
    });
    req.end(body);
  });
}

/** `post`, with a failure (error or status other than 200) recorded for the leg and phase: null then. */
async function tryPost(leg: Leg, phase: string, body: string, onChunk?: (chunk: Buffer, at: number) => void): Promise<{ status: number; ms: number; firstMs: number; text: string } | null> {
  try {
    const r = await post(leg, body, onChunk);
    if (r.status === 200) return r;
    fail(leg, phase, new Error(`${r.status} ${r.text.slice(0, 160)}`));
  } catch (err) {
    fail(leg, phase, err);
  }
  return null;
}

function chatBody(extra: Record<string, unknown>): string {
  return JSON.stringify({ model: "bench", messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: GRAMMAR, ...extra });
}

async function runAt(leg: Leg, phase: string, concurrency: number, count: number, body: string): Promise<number[]> {
  const out: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        const r = await tryPost(leg, phase, body);
        if (r) out.push(r.ms);
      }
    }),
  );
  return out;
}

/** One streamed request: time to first chunk and each token's delay beyond the stream's best (see the header). */
async function streamOnce(leg: Leg, tokens: number, extra: Record<string, unknown>): Promise<{ firstMs: number; delays: number[]; epochMs: number[] } | null> {
  const arrivals: { at: number; predictedMs: number }[] = [];
  let carry = "";
  const r = await tryPost(leg, "streams", chatBody({ stream: true, max_tokens: tokens, ignore_eos: true, timings_per_token: true, ...extra }), (chunk, at) => {
    carry += chunk.toString();
    let i: number;
    while ((i = carry.indexOf("\n\n")) !== -1) {
      const event = carry.slice(0, i);
      carry = carry.slice(i + 2);
      const m = /"predicted_ms":([\d.]+)/.exec(event);
      if (m) arrivals.push({ at, predictedMs: Number(m[1]) });
    }
  });
  if (!r) return null;
  const offsets = arrivals.map((a) => a.at - a.predictedMs);
  const best = Math.min(...offsets);
  const origin = performance.timeOrigin;
  return { firstMs: r.firstMs, delays: offsets.map((o) => o - best), epochMs: arrivals.map((a) => origin + a.at) };
}

async function streamThroughput(leg: Leg, concurrency: number, streams: number, tokens: number, extra: Record<string, unknown> = {}): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < streams) {
        next++;
        if (await tryPost(leg, "throughput", chatBody({ stream: true, max_tokens: tokens, ignore_eos: true, ...extra }))) done++;
      }
    }),
  );
  return (done * tokens) / ((performance.now() - t0) / 1000);
}

/**
 * The roles a c=16 run's CPU is told apart by: this bench (the client), the app's main thread (Next, the
 * fleet, the local agent, the ssh links) and its other threads (the gateway's worker, V8's helpers),
 * every llama-server, nginx, sshd (the ssh host's session), the ssh host's agent (`host-agent … serve`),
 * and the rest of the machine (anything else running meanwhile shows there).
 */
const CPU_ROLES = ["client", "app main", "app threads", "llama-server", "nginx", "sshd", "ssh agent", "other"] as const;

function addCpuByRole(into: Map<string, { requests: number; ms: Map<string, number> }>, leg: string, spent: Map<number, ProcessCpu>, appPid: number, requests: number): void {
  const entry = into.get(leg) ?? { requests: 0, ms: new Map<string, number>() };
  into.set(leg, entry);
  entry.requests += requests;
  const add = (role: (typeof CPU_ROLES)[number], x: number) => entry.ms.set(role, (entry.ms.get(role) ?? 0) + x);
  for (const [pid, p] of spent) {
    if (pid === process.pid) add("client", p.ms);
    else if (pid === appPid) {
      add("app main", p.mainMs);
      add("app threads", p.ms - p.mainMs);
    } else if (p.comm === "llama-server") add("llama-server", p.ms);
    else if (p.comm.startsWith("nginx")) add("nginx", p.ms);
    else if (p.comm.startsWith("sshd")) add("sshd", p.ms);
    else if (/host-agent\S* serve\b/.test(p.cmdline)) add("ssh agent", p.ms);
    else add("other", p.ms);
  }
}

const med = (xs: number[]) => percentile(xs, 50);
/**
 * A distribution-free 95 % confidence interval of the median: the order statistics at
 * n/2 ∓ 1.96·√n/2 (the binomial's normal approximation; e.g. Conover, Practical Nonparametric Statistics, §3.2).
 */
function medianCi(xs: number[]): [number, number] {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const half = 1.96 * Math.sqrt(n) / 2;
  return [s[Math.max(0, Math.floor(n / 2 - half))]!, s[Math.min(n - 1, Math.ceil(n / 2 + half))]!];
}
/** The interquartile range as "p25–p75": how far the reps spread, so a reader sees whether a target is within the noise. */
const iqr = (xs: number[], digits: number) => `${percentile(xs, 25).toFixed(digits)}–${percentile(xs, 75).toFixed(digits)}`;

function summary(xs: number[]): { p50: number; p99: number } {
  return { p50: percentile(xs, 50), p99: percentile(xs, 99) };
}

/**
 * The ssh leg beside the local gateway: added p50 / p99 of each (each against its own server reached
 * directly), and the difference against the 1 ms target.
 */
/**
 * `a` − `b`, rep by rep (each rep runs every leg once, in rotating order, so a rep pairs them against the
 * same drift of the machine's load): the median difference, its 95 % CI (medianCi) and the verdict against
 * `target` (ms): met when the whole CI is at or below it, NOT met when the whole CI is above it.
 */
function repPaired(perRep: Map<string, number[]>, a: string, b: string, target: number): string {
  const bs = perRep.get(b) ?? [];
  const diffs = (perRep.get(a) ?? []).map((x, i) => x - bs[i]!).filter((x) => !Number.isNaN(x));
  if (diffs.length < 3) return `${diffs.length} reps: too few to pair`;
  const [lo, hi] = medianCi(diffs);
  return `median ${med(diffs).toFixed(2)} ms over ${diffs.length} reps, 95 % CI ${lo.toFixed(2)}–${hi.toFixed(2)} (target ≤ ${target}: ${hi <= target ? "met" : lo > target ? "NOT met" : "within this run's noise"})`;
}

function sshVsLocal(c: number, paired: Map<string, number[]>, lat: Map<string, number[]>): string {
  const added = (name: string, direct: string) => (c === 1 ? summary(paired.get(name)!) : { p50: summary(lat.get(`${name}@${c}`)!).p50 - summary(lat.get(`${direct}@${c}`)!).p50, p99: NaN });
  const local = added("gateway", "direct");
  const ssh = added("gateway-ssh", "direct-ssh");
  const more = ssh.p50 - local.p50;
  const p99 = c === 1 ? `; p99 added local ${local.p99.toFixed(2)} ms, ssh ${ssh.p99.toFixed(2)} ms` : "";
  return `        ssh vs local: added p50 local ${local.p50.toFixed(2)} ms, ssh ${ssh.p50.toFixed(2)} ms → ssh adds ${more.toFixed(2)} ms more${p99} (target ≤ 1 ms more: ${more <= 1 ? "met" : "NOT met"})`;
}

type Trpc = (proc: string, input: unknown) => Promise<{ result: { data: { id: string; hostId?: string } } }>;

interface App {
  base: string;
  child: ChildProcess;
  trpc: Trpc;
}

/** Starts an image-shaped app folder with the image's command, its own database and state folder (`tag`). */
async function startApp(imageDir: string, dir: string, tag: string, bin: string, models: string): Promise<App> {
  const appPort = await freePort();
  const base = `http://127.0.0.1:${appPort}`;
  const child = spawn(START_COMMAND[0], START_COMMAND.slice(1), {
    cwd: imageDir,
    env: {
      ...process.env,
      PORT: String(appPort),
      HOSTNAME: "127.0.0.1",
      DATABASE_URL: `file:${path.join(dir, `${tag}.db`)}`,
      SYNAPSE_STATE_DIR: path.join(dir, `${tag}-state`),
      SYNAPSE_MODEL_ROOTS: models,
      LLAMA_SERVER_BIN: bin,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  await until(`the app (${tag})`, async () => (await fetch(`${base}/api/health`)).ok, 120_000, 200);
  const trpc: Trpc = async (proc, input) => {
    const r = await fetch(`${base}/api/trpc/${proc}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(input) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${proc}: ${r.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as { result: { data: { id: string; hostId?: string } } };
  };
  return { base, child, trpc };
}

/** An image folder for `repo` (a checkout: built; an image folder: as it is), and whether this run made it. */
async function imageFor(repo: string | undefined, dir: string, tag: string): Promise<{ imageDir: string; built: boolean }> {
  if (repo !== undefined && (await isAppImage(repo))) return { imageDir: repo, built: false };
  process.stderr.write(`building the app${repo ? ` from ${repo}` : ""} (image layout${NEXT_ROUTE && !repo ? ", plus a Next route handler to compare" : ""}) ...\n`);
  const build = await buildAppImage({ ...(repo ? { repo } : {}), logPath: path.join(dir, `next-build-${tag}.log`), ...(NEXT_ROUTE && !repo ? { extraFiles: { "src/app/api/bench-next-proxy/[...path]/route.ts": NEXT_ROUTE_FILE } } : {}) });
  if (KEEP_IMAGE) process.stderr.write(`kept the ${tag} image: ${build.imageDir}\n`);
  return { imageDir: build.imageDir, built: true };
}

async function main() {
  const bin = llamaServerBin();
  const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-bench-gw-"));
  const models = path.join(dir, "models");
  await mkdir(models, { recursive: true });
  const file = path.join(models, "bench.gguf");
  await writeTinyModel(file, { contextLength: 4096 });
  const coldFile = path.join(models, "cold.gguf");
  await writeTinyModel(coldFile);
  const children: ChildProcess[] = [];
  /** Image folders this run built (removed at the end unless --keep-image). */
  const builtImages: string[] = [];
  let sshHost: SshBenchHost | null = null;
  try {
    const own = await imageFor(IMAGE, dir, "app");
    if (own.built) builtImages.push(own.imageDir);
    const baselineImage = BASELINE !== undefined ? await imageFor(BASELINE, dir, "baseline") : null;
    if (baselineImage?.built) builtImages.push(baselineImage.imageDir);
    const app = await startApp(own.imageDir, dir, "app", bin, models);
    children.push(app.child);
    const { base, trpc } = app;
    const baselineApp = baselineImage ? await startApp(baselineImage.imageDir, dir, "baseline", bin, models) : null;
    if (baselineApp) children.push(baselineApp.child);
    // Idle sockets dropped after 2 s: below every server's keep-alive timeout (llama-server and Node: 5 s), so no request meets a socket the server just closed.
    const mkAgent = () => new http.Agent({ keepAlive: true, maxSockets: 16, timeout: 2000 });
    const legs: Leg[] = [];
    let hostId: string | undefined;
    const lat = new Map<string, number[]>();
    const paired = new Map<string, number[]>();
    const first = new Map<string, number[]>();
    const delays = new Map<string, number[]>();
    const tput = new Map<string, number[]>();
    /** c=16 short requests: CPU ms per request, per leg and role (CPU_ROLES), summed over reps. */
    const c16Cpu = new Map<string, { requests: number; ms: Map<string, number> }>();
    /** c=16 short requests: each rep's p50 per leg (ms), in rep order: the reps pair the legs (see repPaired). */
    const c16RepP50 = new Map<string, number[]>();
    /** CPU ms per stream of the throughput runs, per leg: the app's own threads, and nginx's. */
    const tputCpu = new Map<string, { app: number[]; nginx: number[] }>();
    /** Resident memory (MB): the app after the warm-up and after the throughput runs, nginx (master and workers) after them. */
    const rss = { appWarm: Number.NaN, appEnd: Number.NaN, nginxEnd: Number.NaN };
    let nginx: { port: number; child: ChildProcess } | null = null;
    /** Latencies of the warm-up requests per leg, in order of completion. */
    let warmUp = new Map<string, number[]>();
    if (!COLD_ONLY) {
      const llamaPort = await freePort();
      // No server key: the direct, nginx and Next-route legs talk to the port as plain clients do (the gateway would only add one header).
      const benchModel = await trpc("models.create", { name: "bench", filePath: file, port: llamaPort, enabled: true, ctxSize: 4096, threads: 1, parallel: 16, serverApiKeyOff: true });
      hostId = benchModel.result.data.hostId;
      const started = await fetch(`${base}/api/models/servers/start-all`, { method: "POST" });
      if (!started.ok) throw new Error(`start-all: ${started.status} ${await started.text()}`);

      legs.push({ name: "direct", base: `http://127.0.0.1:${llamaPort}`, path: "/v1/chat/completions", agent: mkAgent() }, { name: "gateway", base, path: "/v1/chat/completions", agent: mkAgent() });
      nginx = await startNginx(dir, llamaPort);
      if (nginx) {
        children.push(nginx.child);
        legs.splice(1, 0, { name: "nginx", base: `http://127.0.0.1:${nginx.port}`, path: "/v1/chat/completions", agent: mkAgent() });
      } else process.stderr.write("nginx not found: the nginx leg is skipped (install it: apt-get install -y nginx)\n");
      if (NEXT_ROUTE) legs.push({ name: "next-route", base, path: "/api/bench-next-proxy/v1/chat/completions", agent: mkAgent() });
      if (SSH_LEG) {
        process.stderr.write("starting the ssh host (sshd on loopback, the wrapper, its agent) ...\n");
        sshHost = await startSshBenchHost({ dir, bin, modelsDir: models, file, name: "bench-ssh", base, trpc, modelFields: { enabled: true, ctxSize: 4096, threads: 1, parallel: 16, serverApiKeyOff: true } });
        // The ssh host's model has a llama-server of its own, whose speed differs from the local one's (it is
        // another process, with its own log path): the ssh leg is compared with that server reached directly.
        legs.push(
          { name: "direct-ssh", base: `http://127.0.0.1:${sshHost.port}`, path: "/v1/chat/completions", agent: mkAgent(), model: sshHost.model },
          { name: "gateway-ssh", base, path: "/v1/chat/completions", agent: mkAgent(), model: sshHost.model, directLeg: "direct-ssh" },
        );
      }
      // The Next route reads the port from the body (as the gateway reads "model"); llama-server ignores the field.
      const bodyFor = (leg: Leg, b: string) => (leg.name === "next-route" ? JSON.stringify({ ...JSON.parse(b), port: llamaPort }) : b);

      const short = chatBody({});
      // Warm-up: connections, JIT, caches (see the header).
      const warm = new Map<string, number[]>();
      for (const leg of legs) {
        process.stderr.write(`  warm-up ${leg.name}: ${WARM_UP} requests, ${Math.ceil(WARM_UP / 50)} streams   \r`);
        warm.set(leg.name, await runAt(leg, "warm-up", 4, Math.max(40, WARM_UP), bodyFor(leg, short)));
        await streamThroughput(leg, 16, Math.ceil(WARM_UP / 50), 16, leg.name === "next-route" ? { port: llamaPort } : {});
      }
      warmUp = warm;
      rss.appWarm = rssMb(app.child.pid);

      /** c=1: one request per leg per round, in rotating order; the added latency is paired within the round. */
      for (let round = 0; round < (RUN.has("c1") ? REPS * PER_REP : 0); round++) {
        if (round % 50 === 0) process.stderr.write(`  latency c=1 round ${round + 1}/${REPS * PER_REP}   \r`);
        const got = new Map<string, number>();
        for (const leg of legs.map((_, i) => legs[(i + round) % legs.length]!)) {
          const r = await tryPost(leg, "latency c=1", bodyFor(leg, short));
          if (!r) continue;
          got.set(leg.name, r.ms);
          lat.set(`${leg.name}@1`, [...(lat.get(`${leg.name}@1`) ?? []), r.ms]);
        }
        // A round where any leg failed is left out of the pairs.
        if (got.size === legs.length) for (const leg of legs) if (!isDirect(leg)) paired.set(leg.name, [...(paired.get(leg.name) ?? []), got.get(leg.name)! - got.get(directOf(leg))!]);
      }
      for (const c of RUN.has("c16") ? [16] : []) {
        for (let r = 0; r < REPS; r++) {
          process.stderr.write(`  latency c=${c} rep ${r + 1}/${REPS}\r`);
          const order = legs.map((_, i) => legs[(i + r) % legs.length]!);
          for (const leg of order) {
            const key = `${leg.name}@${c}`;
            const before = cpuByProcess();
            const got = await runAt(leg, `latency c=${c}`, c, c === 1 ? PER_REP : PER_REP * 4, bodyFor(leg, short));
            addCpuByRole(c16Cpu, leg.name, cpuSpent(before, cpuByProcess()), app.child.pid!, got.length);
            c16RepP50.set(leg.name, [...(c16RepP50.get(leg.name) ?? []), got.length > 0 ? med(got) : Number.NaN]);
            lat.set(key, [...(lat.get(key) ?? []), ...got]);
          }
        }
      }

      const streamLegs = legs;
      for (let r = 0; r < (RUN.has("streams") ? REPS * 3 : 0); r++) {
        process.stderr.write(`  streams rep ${r + 1}/${REPS * 3}          \r`);
        for (const leg of streamLegs.map((_, i) => streamLegs[(i + r) % streamLegs.length]!)) {
          const s = await streamOnce(leg, 64, leg.name === "next-route" ? { port: llamaPort } : {});
          if (!s) continue;
          first.set(leg.name, [...(first.get(leg.name) ?? []), s.firstMs]);
          delays.set(leg.name, [...(delays.get(leg.name) ?? []), ...s.delays]);
          if (DELAYS_OUT) await appendFile(DELAYS_OUT, s.delays.map((d, i) => `${JSON.stringify({ leg: leg.name, at: Math.round(s.epochMs[i]! * 1000) / 1000, delayMs: Math.round(d * 1000) / 1000 })}\n`).join(""));
        }
      }

      for (let r = 0; r < (RUN.has("throughput") ? Math.max(5, REPS) : 0); r++) {
        process.stderr.write(`  throughput rep ${r + 1}                \r`);
        for (const leg of legs.map((_, i) => legs[(i + r) % legs.length]!)) {
          if (leg.name === "next-route") continue;
          const before = { app: cpuMs(app.child.pid!), nginx: nginx ? cpuMs(nginx.child.pid!, { children: true }) : Number.NaN };
          tput.set(leg.name, [...(tput.get(leg.name) ?? []), await streamThroughput(leg, 16, 48, 64)]);
          const cpu = tputCpu.get(leg.name) ?? { app: [], nginx: [] };
          cpu.app.push((cpuMs(app.child.pid!) - before.app) / 48);
          if (nginx) cpu.nginx.push((cpuMs(nginx.child.pid!, { children: true }) - before.nginx) / 48);
          tputCpu.set(leg.name, cpu);
        }
      }
      rss.appEnd = rssMb(app.child.pid);
      if (nginx) rss.nginxEnd = rssMb(nginx.child.pid, { children: true });
    }

    // ---- cold start: on-demand through the gateway (and the baseline's) vs llama-server launched by hand
    const cold = new Map<string, number[]>();
    const coldApps = [{ name: "gateway", app }, ...(baselineApp ? [{ name: "baseline", app: baselineApp }] : [])];
    let coldNote = "";
    const coldBody = JSON.stringify({ model: "cold", messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: GRAMMAR });
    const coldLegs: { name: string; run: () => Promise<number> }[] = [];
    for (const { name, app: a } of RUN.has("cold") ? coldApps : []) {
      // On the app's own host (the ssh leg registers a second one on this app; the baseline app has its own local host).
      const created = await a.trpc("models.create", { name: "cold", ...(a === app ? { hostId } : {}), filePath: coldFile, port: await freePort(), enabled: true, ctxSize: 256, threads: 1, parallel: 1, loadPolicy: "on-demand", serverApiKeyOff: true }).catch((err: unknown) => {
        coldNote = `cold start skipped: ${(err as Error).message.slice(0, 200)}`;
        return null;
      });
      if (!created) break;
      const coldId = created.result.data.id;
      const leg: Leg = { name, base: a.base, path: "/v1/chat/completions", agent: mkAgent() };
      coldLegs.push({
        name,
        run: async () => {
          const t0 = performance.now();
          const r = await post(leg, coldBody);
          if (r.status !== 200) throw new Error(`${name} cold: ${r.status} ${r.text.slice(0, 300)}`);
          const t = performance.now() - t0;
          const stop = await fetch(`${a.base}/api/trpc/servers.stop`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id: coldId }) });
          if (!stop.ok) throw new Error(`stop: ${stop.status}`);
          return t;
        },
      });
    }
    if (coldLegs.length === coldApps.length) {
      coldLegs.push({
        name: "direct",
        run: async () => {
          const port = await freePort();
          const t0 = performance.now();
          const child = spawn(bin, ["-m", coldFile, "--host", "127.0.0.1", "--port", String(port), "-c", "256", "-t", "1", "-np", "1", "--alias", "cold"], { stdio: "ignore" });
          try {
            for (;;) {
              const ok = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false);
              if (ok) break;
              if (performance.now() - t0 > 60_000) throw new Error("direct llama-server not ready in 60 s");
              await sleep(5);
            }
            const r = await post({ name: "direct", base: `http://127.0.0.1:${port}`, path: "/v1/chat/completions", agent: new http.Agent() }, coldBody);
            if (r.status !== 200) throw new Error(`direct cold: ${r.status}`);
            return performance.now() - t0;
          } finally {
            child.kill("SIGKILL");
            await new Promise((r) => child.once("exit", r));
          }
        },
      });
      // One start of each first, not counted: the first spawn of a binary and the apps' first on-demand path (JIT, page cache) cost several times a later one.
      for (const leg of coldLegs) await leg.run();
      for (let r = 0; r < COLD_REPS; r++) {
        process.stderr.write(`  cold start rep ${r + 1}/${COLD_REPS}          \r`);
        // Rotating order: each leg goes first, second, … equally often.
        for (const leg of coldLegs.map((_, i) => coldLegs[(i + r) % coldLegs.length]!)) cold.set(leg.name, [...(cold.get(leg.name) ?? []), await leg.run()]);
      }
    } else coldLegs.length = 0;
    process.stderr.write("\n");

    // ---- report
    const out: string[] = [];
    out.push(`gateway benchmark: tiny model (ctx 4096, 16 slots, 1 thread), ${REPS} alternating reps; ${os.cpus().length} cores, node ${process.version}`);
    if (!COLD_ONLY) {
      out.push("");
      const half = (xs: number[], last: boolean) => summary(last ? xs.slice(-500) : xs.slice(0, 500)).p50;
      out.push(`warm-up, ${WARM_UP} short requests per leg at c=4 (not in the figures below): p50 of the first 500 → the last 500`);
      out.push(`  ${[...warmUp].map(([name, xs]) => `${name} ${ms(half(xs, false), 2)} → ${ms(half(xs, true), 2)}`).join("   ")}`);
      out.push("");
      out.push("short chat completion (4 tokens, not streamed): latency and added latency vs direct");
      for (const c of [1, 16].filter((c) => RUN.has(`c${c}` as Phase))) {
        const d = summary(lat.get(`direct@${c}`)!);
        out.push(`  c=${c}  direct p50 ${ms(d.p50, 2)}  p99 ${ms(d.p99, 2)}   (${lat.get(`direct@${c}`)!.length} requests per leg)`);
        for (const leg of legs.filter((l) => l.name !== "direct")) {
          const s = summary(lat.get(`${leg.name}@${c}`)!);
          if (isDirect(leg)) {
            out.push(`        ${leg.name.padEnd(10)} p50 ${ms(s.p50, 2)}  p99 ${ms(s.p99, 2)}   (the ssh host's own llama-server, reached directly: the ssh leg's reference)`);
            continue;
          }
          const ref = summary(lat.get(`${directOf(leg)}@${c}`)!);
          const p = c === 1 ? summary(paired.get(leg.name)!) : null;
          out.push(
            `        ${leg.name.padEnd(10)} p50 ${ms(s.p50, 2)} (+${(s.p50 - ref.p50).toFixed(2)})  p99 ${ms(s.p99, 2)} (+${(s.p99 - ref.p99).toFixed(2)})` +
              (p ? `   paired added: p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms` : ""),
          );
        }
        if (nginx) {
          const addedP50 = (name: string) => (c === 1 ? summary(paired.get(name)!).p50 : summary(lat.get(`${name}@${c}`)!).p50 - d.p50);
          const n = addedP50("nginx");
          const g = addedP50("gateway");
          out.push(`        target: gateway added p50 ≤ nginx's + 0.3 ms → ${g.toFixed(2)} vs ${(n + 0.3).toFixed(2)}: ${g <= n + 0.3 ? "met" : "NOT met"}`);
          if (c === 16) out.push(`        per rep, gateway − nginx p50: ${repPaired(c16RepP50, "gateway", "nginx", 0.3)}`);
          if (c === 1) {
            // The same rounds carry both legs: gateway − nginx per round is itself a paired figure.
            const gs = paired.get("gateway")!;
            const diffs = paired.get("nginx")!.map((x, i) => gs[i]! - x);
            const [lo, hi] = medianCi(diffs);
            out.push(`        per round, gateway − nginx: median ${med(diffs).toFixed(3)} ms, 95 % CI ${lo.toFixed(3)}–${hi.toFixed(3)} (target ≤ 0.3: ${hi <= 0.3 ? "met" : lo > 0.3 ? "NOT met" : "within this run's noise"})`);
          }
        }
        if (sshHost) out.push(sshVsLocal(c, paired, lat));
        if (sshHost && c === 16) {
          // (gateway-ssh − direct-ssh) − (gateway − direct), rep by rep.
          const added = (leg: string, ref: string) => (c16RepP50.get(leg) ?? []).map((x, i) => x - c16RepP50.get(ref)![i]!);
          const local = added("gateway", "direct");
          out.push(`        per rep, ssh's added p50 − local's: ${repPaired(new Map([["ssh", added("gateway-ssh", "direct-ssh")], ["local", local]]), "ssh", "local", 1)}`);
        }
        if (c === 16 && c16Cpu.size > 0) {
          out.push("        CPU per request (µs) at c=16, by process, all reps: where each leg's time goes (a proxy's own CPU is taken from llama-server and the client on a machine they fill)");
          out.push(`          ${"leg".padEnd(12)}${CPU_ROLES.map((r) => r.padStart(13)).join("")}`);
          for (const [name, { requests, ms: byRole }] of c16Cpu) out.push(`          ${name.padEnd(12)}${CPU_ROLES.map((r) => (((byRole.get(r) ?? 0) / requests) * 1000).toFixed(0).padStart(13)).join("")}`);
        }
      }
      if (RUN.has("streams")) {
        out.push("");
        out.push("streamed (64 tokens): time to first chunk; per-chunk delay beyond the stream's best chunk");
        for (const leg of legs) {
          const dDelay = summary(delays.get(directOf(leg)) ?? []);
          const f = (first.get(leg.name) ?? []).filter((x) => !Number.isNaN(x));
          const dl = delays.get(leg.name) ?? [];
          if (f.length === 0) continue;
          const fs = summary(f);
          const ds = summary(dl);
          out.push(`  ${leg.name.padEnd(10)} first chunk p50 ${ms(fs.p50, 2)} p99 ${ms(fs.p99, 2)}   chunk delay p50 ${ms(ds.p50, 3)} p99 ${ms(ds.p99, 3)}${isDirect(leg) ? "" : ` (p99 +${(ds.p99 - dDelay.p99).toFixed(3)} vs ${directOf(leg)}; target ≤ 1 ms)`}`);
        }
      }
      if (RUN.has("throughput")) {
        out.push("");
        out.push(`streamed throughput at c=16 (48 streams × 64 tokens), ${tput.get("direct")!.length} reps: median of reps, and median of the per-rep shares (each rep runs every leg once, in rotating order)`);
        const tputFailed = [...tput.keys()].filter((name) => failedIn(name, "throughput") > 0);
        for (const [name, xs] of tput) {
          const ref = directOf(legs.find((l) => l.name === name)!);
          const dTs = tput.get(ref)!;
          const dT = med(dTs);
          const shares = xs.map((x, i) => (x / dTs[i]!) * 100);
          const [lo, hi] = medianCi(shares);
          const spread = xs.length >= 4 && !isDirect({ name } as Leg) ? `, IQR ${iqr(shares, 1)}, 95 % CI of the median ${lo.toFixed(1)}–${hi.toFixed(1)}` : "";
          const verdict = name === "gateway" ? `; target ≥ 97 %: ${lo >= 97 ? "met" : hi < 97 ? "NOT met" : "within this run's noise"}` : "";
          out.push(`  ${name.padEnd(10)} ${med(xs).toFixed(0)} tokens/s  (${((med(xs) / dT) * 100).toFixed(1)} % of ${ref}; per rep ${med(shares).toFixed(1)} %${spread}${verdict})${failedIn(name, "throughput") > 0 ? `  ${failedIn(name, "throughput")} stream(s) FAILED` : ""}`);
        }
        // The gateway against nginx in the same reps: what a proxy of its own costs beyond a plain one's, paired.
        const shareOf = (name: string) => (tput.get(name) ?? []).map((x, i) => (x / tput.get("direct")![i]!) * 100);
        if (tput.has("nginx") && tput.has("gateway") && tput.get("gateway")!.length >= 4) {
          const g = shareOf("gateway");
          const n = shareOf("nginx");
          const diffs = g.map((x, i) => x - n[i]!);
          const [lo, hi] = medianCi(diffs);
          out.push(`  per rep, gateway's share − nginx's: median ${med(diffs).toFixed(1)} points, 95 % CI ${lo.toFixed(1)}–${hi.toFixed(1)}`);
        }
        out.push("  CPU time per stream (64 tokens), median of reps: the app's threads (llama-server's log lines on every leg; the relay on the gateway's) and nginx's processes");
        for (const [name, c] of tputCpu) out.push(`  ${name.padEnd(10)} app ${med(c.app).toFixed(2)} ms${c.nginx.length > 0 ? `, nginx ${med(c.nginx).toFixed(2)} ms` : ""}`);
        out.push(`  resident memory (VmRSS): the app ${rss.appWarm.toFixed(0)} MB after the warm-up, ${rss.appEnd.toFixed(0)} MB after the throughput runs (Next, the fleet, the agent and the gateway's worker)${nginx ? `; nginx ${rss.nginxEnd.toFixed(1)} MB` : ""}`);
        if (tputFailed.length > 0) out.push(`  the shares are not comparable: streams failed in ${tputFailed.join(", ")} (see below), and a failed stream counts no tokens`);
      }
    }
    out.push("");
    if (cold.size > 0) {
      const d = cold.get("direct")!;
      const names = coldLegs.map((l) => l.name).filter((n) => n !== "direct");
      out.push(`on-demand cold start to the full answer, ${COLD_REPS} reps (llama-server launched directly, /health every 5 ms = direct); load average ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`);
      out.push(`  per rep (ms): ${["direct", ...names].map((n) => `${n} [${cold.get(n)!.map((x) => x.toFixed(1)).join(" ")}]`).join("  ")}`);
      for (const n of names) {
        const xs = cold.get(n)!;
        const ratios = xs.map((x, i) => x / d[i]!);
        out.push(`  ${n.padEnd(8)} median ${ms(med(xs))} vs direct ${ms(med(d))} → ratio of medians ${(med(xs) / med(d)).toFixed(2)}, median of per-rep ratios ${med(ratios).toFixed(2)}${ratios.length >= 4 ? ` (IQR ${iqr(ratios, 2)})` : ""} (target ≤ 1.10)`);
      }
      if (names.includes("baseline")) {
        const diffs = cold.get("gateway")!.map((x, i) => x - cold.get("baseline")![i]!);
        out.push(`  gateway − baseline, paired per rep: median ${diffs.length ? med(diffs).toFixed(1) : "?"} ms`);
      }
    } else if (RUN.has("cold")) out.push(coldNote || "cold start: not measured");
    out.push("");
    out.push(`failed requests, left out of the figures: ${legs.map((l) => `${l.name} ${[...(failures.get(l.name)?.values() ?? [])].reduce((n, xs) => n + xs.length, 0)}`).join(", ")}`);
    for (const [name, phases] of failures) for (const [phase, list] of phases) out.push(`  ${name} ${phase}: ${list.length}, first: ${list[0]}`);
    out.push(`requests resent once after a kept-alive socket closed under them: ${legs.map((l) => `${l.name} ${resent.get(l.name) ?? 0}`).join(", ")}`);
    process.stdout.write(`${out.join("\n")}\n`);
    for (const leg of legs) leg.agent.destroy();
  } finally {
    // Every child is stopped the way it cleans up after itself: the app stops its llama-servers on
    // SIGTERM, nginx's master stops its workers on SIGTERM; SIGKILL only past a deadline.
    for (const c of children) await stopChild(c, 60_000);
    // Anything still running from this run's folder (a server the app could not stop) is killed.
    for (const pid of await pidsRunning(dir)) {
      try {
        process.kill(pid, "SIGKILL");
        process.stderr.write(`killed a process left behind: pid ${pid}\n`);
      } catch {
        // gone meanwhile
      }
    }
    await sshHost?.dispose().catch((err: unknown) => process.stderr.write(`stopping the ssh host failed: ${(err as Error).message}\n`));
    if (!KEEP_IMAGE) for (const imageDir of builtImages) await removeAppImage(imageDir);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
void ROOT;
