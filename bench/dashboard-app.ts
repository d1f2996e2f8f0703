/**
 * Shared by the dashboard benchmarks: a production build of the app (the
 * image-shaped folder the e2e tests and the Docker image run), and one app
 * instance started from it the way users start it (`node scripts/start.mjs
 * --no-build`) on a free loopback port with its own temp database, state dir
 * and model root.
 *
 *   --image <dir> / SYNAPSE_E2E_IMAGE_DIR   reuse an existing build (else one is made, ~1-2 min)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { buildAppImage, isAppImage, REPO_ROOT, removeAppImage, START_COMMAND } from "../test/harness/app-build.ts";
import { argValue } from "./lib.ts";

export interface Image {
  dir: string;
  /** Removes the build when this run made it. */
  dispose(): Promise<void>;
}

export async function appImage(): Promise<Image> {
  const given = argValue("--image") ?? process.env.SYNAPSE_E2E_IMAGE_DIR;
  if (given) {
    const dir = path.resolve(given);
    if (!(await isAppImage(dir))) throw new Error(`${given} is not an image-shaped app build (server.js and scripts/start.mjs at its root)`);
    return { dir, dispose: async () => undefined };
  }
  const logPath = path.join(REPO_ROOT, "test-results", "bench-next-build.log");
  process.stderr.write(`building the app (next build in a copy of the tree; log: ${path.relative(process.cwd(), logPath)}) …\n`);
  const build = await buildAppImage({ logPath });
  process.stderr.write(`built in ${(build.buildMs / 1000).toFixed(1)} s\n`);
  return { dir: build.imageDir, dispose: () => removeAppImage(build.imageDir) };
}

export interface BenchApp {
  url: string;
  pid: number;
  modelRoot: string;
  stateDir: string;
  query<T>(proc: string, input?: unknown): Promise<T>;
  mutation<T>(proc: string, input?: unknown): Promise<T>;
  stop(): Promise<void>;
}

async function trpc<T>(url: string, proc: string, method: "GET" | "POST", input: unknown): Promise<T> {
  const target = method === "GET" ? `${url}/api/trpc/${proc}${input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`}` : `${url}/api/trpc/${proc}`;
  const res = await fetch(target, {
    method,
    headers: method === "POST" ? { "content-type": "application/json" } : {},
    body: method === "POST" ? JSON.stringify(input ?? {}) : undefined,
    signal: AbortSignal.timeout(180_000),
  });
  const body = (await res.json()) as { result?: { data?: T }; error?: { message?: string } };
  if (!res.ok || body.error) throw new Error(`${proc}: HTTP ${res.status} ${body.error?.message ?? ""}`);
  return body.result?.data as T;
}

export async function startBenchApp(image: Image, env: Record<string, string> = {}): Promise<BenchApp> {
  const root = await mkdtemp(path.join(os.tmpdir(), "synapse-bench-dashboard-"));
  const dirs = { database: path.join(root, "data", "synapse.db"), stateDir: path.join(root, "state"), modelRoot: path.join(root, "models") };
  await Promise.all([mkdir(path.dirname(dirs.database), { recursive: true }), mkdir(dirs.stateDir, { recursive: true }), mkdir(dirs.modelRoot, { recursive: true })]);
  const port = await freePort();
  const [, ...args] = START_COMMAND;
  const childEnv: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: "production",
    NEXT_TELEMETRY_DISABLED: "1",
    HOSTNAME: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: `file:${dirs.database}`,
    SYNAPSE_STATE_DIR: dirs.stateDir,
    SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
    LOG_LEVEL: "warn",
    ...(process.env.LLAMA_SERVER_BIN ? { LLAMA_SERVER_BIN: process.env.LLAMA_SERVER_BIN } : {}),
    ...env,
  };
  const child: ChildProcess = spawn(process.execPath, args, { cwd: image.dir, env: childEnv, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the app exited during start:\n${stderr}`);
    try {
      if ((await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(2000) })).status === 200) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the app did not answer /api/health within 90 s:\n${stderr}`);
    }
    await sleep(100);
  }
  return {
    url,
    pid: child.pid!,
    modelRoot: dirs.modelRoot,
    stateDir: dirs.stateDir,
    query: (proc, input) => trpc(url, proc, "GET", input),
    mutation: (proc, input) => trpc(url, proc, "POST", input),
    async stop() {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 60_000);
      await exited;
      clearTimeout(t);
      await rm(root, { recursive: true, force: true });
    },
  };
}

export interface Rss {
  /** VmRSS: everything resident. */
  total: number;
  /** RssAnon: heap and other private memory (what the app itself grows). */
  anon: number;
  /** RssFile: mapped files (node's binary, native modules), largely shared. */
  file: number;
}

/** Resident memory of a process, in bytes, from /proc/<pid>/status. */
export async function rss(pid: number): Promise<Rss> {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => {
    const m = new RegExp(`${name}:\\s+(\\d+)\\s+kB`).exec(status);
    if (!m) throw new Error(`no ${name} for pid ${pid}`);
    return Number(m[1]) * 1024;
  };
  return { total: field("VmRSS"), anon: field("RssAnon"), file: field("RssFile") };
}
