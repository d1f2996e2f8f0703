/**
 * The app in production mode, as users run it: `node scripts/start.mjs
 * --no-build` (START_COMMAND, the Docker image's CMD) in an image-shaped
 * build folder (test/harness/app-build.ts), on a free loopback port, with its
 * own temp database, agent state dir and model root.
 *
 *   const app = await startApp({ name: "home" });          // waits for /api/health 200
 *   await app.fetch("/api/health");                          // Host header is 127.0.0.1:<port>
 *   await app.trpc.query("models.list");                     // tRPC over HTTP, data unwrapped
 *   const db = app.db();                                     // Prisma client on the app's database
 *   const again = await app.restart();                       // same port, database, state dir
 *   const { code, log } = await again.stop();                // SIGTERM, waits for exit
 *
 * Every instance is tracked: `stopAllApps()` (the e2e project's setup file
 * calls it after each file) stops whatever a test left running, and a process
 * exit handler SIGKILLs any survivor. After an app exits, llama-servers it
 * left behind (found through the agent's records in its state dir) are
 * killed too, so nothing outlives a test, pass or fail. Stopped instances
 * write their stdout+stderr to test-results/logs/<name>.log.
 *
 * The build folder comes from the e2e global setup (`inject("appImageDir")`);
 * pass `imageDir` to use another.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect, inject } from "vitest";
import { openDatabase, type Db } from "../../src/server/db/client";
import { envSchema } from "../../src/server/env";
import { freePort } from "../../host-agent/test/harness/ports";
import { REPO_ROOT, START_COMMAND } from "./app-build";

/** One line of the app's structured stderr log (src/server/log/logger.ts), or `{ raw }` for anything else. */
export type LogRecord = { t?: string; level?: string; component?: string; msg?: string; raw?: string; [field: string]: unknown };

export interface StartAppOptions {
  /** Names the log file (test-results/logs/<name>.log) and temp folder; default: the test file's name. */
  name?: string;
  /** Extra environment (wins over the defaults below). `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Image-shaped build folder; default: the e2e global setup's build. */
  imageDir?: string;
  /**
   * The folder the start command runs from; default: the build folder (the image's WORKDIR, where
   * server.js is). Another folder is `npm start`'s case: the user's folder, while Next's standalone
   * server changes its working folder to its own.
   */
  cwd?: string;
  /** Port to listen on; default a free loopback port. */
  port?: number;
  /** Deadline for /api/health to answer 200 (default 60 s). */
  startTimeoutMs?: number;
  /** Reuse these folders (another instance's `dirs`) instead of making new ones. */
  dirs?: AppDirs;
  /** false: do not wait for health (to test a start that must fail); `exited` tells when it ends. */
  waitForHealth?: boolean;
}

export interface AppDirs {
  /** Temp root; removed when the last instance using it is disposed. */
  root: string;
  /** SQLite file (DATABASE_URL=file:<this>). */
  database: string;
  /** SYNAPSE_STATE_DIR: the local agent's records and server logs. */
  stateDir: string;
  /** SYNAPSE_MODEL_ROOTS: put models here (tiny-model.ts writes them). */
  modelRoot: string;
  /** SYNAPSE_SSH_DIR default: empty unless a test writes an ssh folder there. */
  sshDir: string;
}

export interface StopResult {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the deadline passed and the harness had to SIGKILL it. */
  killed: boolean;
  /** How long from the signal to the exit. */
  ms: number;
  /** Parsed stderr lines. */
  log: LogRecord[];
  stdout: string;
  stderr: string;
  /** Llama-servers still alive after the app exited (killed by the harness; a non-empty list is a bug). */
  leftovers: { id: string; pid: number }[];
}

export interface TrpcResult<T = unknown> {
  status: number;
  data?: T;
  error?: { message: string; code: number; data?: Record<string, unknown> };
}

export interface AppServer {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly dirs: AppDirs;
  /** The environment the process started with (only the variables the harness set or passed). */
  readonly env: Readonly<Record<string, string>>;
  /** True until the process exits. */
  readonly running: boolean;
  /** Resolves with the exit once the process ends (however it ends). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Parsed stderr so far. */
  logs(): LogRecord[];
  stdout(): string;
  stderr(): string;
  /** Resolves with the first log record (past or future) that matches; rejects at the deadline or when the app exits. */
  waitForLog(match: ((r: LogRecord) => boolean) | Partial<LogRecord>, timeoutMs?: number): Promise<LogRecord>;
  /** fetch against the app; relative paths; adds the bearer token when SYNAPSE_API_TOKEN is set (unless `auth: false`). */
  fetch(pathname: string, init?: RequestInit & { auth?: boolean }): Promise<Response>;
  /** `fetch` with a JSON body (POST by default) and a parsed JSON answer. */
  json<T = unknown>(pathname: string, init?: { method?: string; body?: unknown; headers?: Record<string, string>; auth?: boolean }): Promise<{ status: number; body: T }>;
  /**
   * A Prisma client on the app's database (opened once, not migrated: the app
   * did that), for arranging rows a test needs and checking what the app
   * wrote. Closed by stop().
   */
  db(): Db;
  /** tRPC over plain HTTP (no batching): query = GET, mutation = POST. */
  trpc: {
    query<T = unknown>(procedure: string, input?: unknown): Promise<TrpcResult<T>>;
    mutation<T = unknown>(procedure: string, input?: unknown): Promise<TrpcResult<T>>;
  };
  /**
   * Sends `signal` (default SIGTERM) and waits for the exit; after `timeoutMs`
   * (default 75 s: the app's own shutdown cap is 60 s) SIGKILL. Then kills any
   * llama-server the app's agent records still show alive. Idempotent.
   */
  stop(signal?: NodeJS.Signals, options?: { timeoutMs?: number; /** Leave llama-servers running (re-adoption tests). */ keepServers?: boolean }): Promise<StopResult>;
  /** Stops (SIGTERM) if running, then starts a new instance with the same folders, port and environment (plus `env`). */
  restart(options?: { env?: Record<string, string | undefined>; startTimeoutMs?: number }): Promise<AppServer>;
  /** Stops if running and removes the temp folders (unless another live instance uses them). */
  dispose(): Promise<void>;
}

declare module "vitest" {
  export interface ProvidedContext {
    /** Image-shaped production build (e2e/global-setup.ts); empty when the build failed. */
    appImageDir: string;
    /** Why the build failed (empty when it did not). */
    appBuildError: string;
  }
}

const DEFAULT_START_TIMEOUT_MS = 60_000;
const DEFAULT_STOP_TIMEOUT_MS = 75_000;
export const LOGS_DIR = path.join(REPO_ROOT, "test-results", "logs");

/** Instances not yet disposed (running or stopped; their folders still exist). */
const tracked = new Set<AppServerImpl>();
const dirUsers = new Map<string, number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a worker ends without running afterAll hooks.
  process.once("exit", () => {
    for (const app of tracked) app.killNow();
  });
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The variables the app reads (src/server/env.ts); inherited values of these never leak into a test app. */
const APP_ENV_KEYS = Object.keys(envSchema.shape);

function baseEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (APP_ENV_KEYS.includes(k) || k.startsWith("VITEST") || k === "NODE_OPTIONS" || k.startsWith("SYNAPSE_") || k === "TEST") continue;
    out[k] = v;
  }
  return out;
}

export async function makeAppDirs(name = "app"): Promise<AppDirs> {
  const root = await mkdtemp(path.join(os.tmpdir(), `synapse-e2e-${name.replace(/[^A-Za-z0-9_-]/g, "_")}-`));
  const dirs: AppDirs = {
    root,
    database: path.join(root, "data", "synapse.db"),
    stateDir: path.join(root, "state"),
    modelRoot: path.join(root, "models"),
    sshDir: path.join(root, "ssh"),
  };
  await Promise.all([mkdir(path.dirname(dirs.database), { recursive: true }), mkdir(dirs.stateDir, { recursive: true }), mkdir(dirs.modelRoot, { recursive: true })]);
  return dirs;
}

function resolveImageDir(explicit?: string): string {
  if (explicit) return explicit;
  let dir: string | undefined;
  let buildError: string | undefined;
  try {
    dir = inject("appImageDir");
    buildError = inject("appBuildError");
  } catch {
    dir = undefined;
  }
  if (buildError) throw new Error(`no app to start: ${buildError}`);
  if (!dir) throw new Error("no app build: run production-mode tests through vitest's e2e project (its global setup builds the app), or pass imageDir");
  return dir;
}

function matcher(match: ((r: LogRecord) => boolean) | Partial<LogRecord>): (r: LogRecord) => boolean {
  if (typeof match === "function") return match;
  return (r) => Object.entries(match).every(([k, v]) => r[k] === v);
}

class AppServerImpl implements AppServer {
  readonly url: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private records: LogRecord[] = [];
  private out = "";
  private err = "";
  private errPartial = "";
  private waiters: { pred: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void; reject: (e: Error) => void }[] = [];
  private stopping: Promise<StopResult> | null = null;
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private disposed = false;
  private dbClient: Db | null = null;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dirs: AppDirs,
    readonly env: Readonly<Record<string, string>>,
    readonly imageDir: string,
    private readonly startOptions: StartAppOptions,
  ) {
    this.url = `http://127.0.0.1:${port}`;
    // The image's CMD, run by the same node that runs the tests, from a folder of the test's own (its script by full path).
    const args = START_COMMAND.slice(1).map((a) => (a.endsWith(".mjs") ? path.join(imageDir, a) : a));
    this.child = spawn(process.execPath, args, { cwd: startOptions.cwd ?? imageDir, env: { ...baseEnv(), ...env } as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.setEncoding("utf8").on("data", (d: string) => (this.out += d));
    this.child.stderr!.setEncoding("utf8").on("data", (d: string) => this.onStderr(d));
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        if (this.errPartial) this.onStderr("\n");
        for (const w of this.waiters.splice(0)) w.reject(new Error(`app ${this.name} exited (${signal ?? `code ${code}`}) before the awaited log line\n${this.tail()}`));
        resolve(this.exit);
      });
    });
    this.child.once("error", (e) => {
      this.err += `spawn failed: ${e.message}\n`;
    });
    dirUsers.set(dirs.root, (dirUsers.get(dirs.root) ?? 0) + 1);
    tracked.add(this);
    installExitHook();
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === null;
  }

  private onStderr(chunk: string): void {
    this.err += chunk;
    const text = this.errPartial + chunk;
    const lines = text.split("\n");
    this.errPartial = lines.pop() ?? "";
    for (const line of lines) {
      if (line.trim() === "") continue;
      let rec: LogRecord;
      try {
        const parsed: unknown = JSON.parse(line);
        rec = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as LogRecord) : { raw: line };
      } catch {
        rec = { raw: line };
      }
      this.records.push(rec);
      for (const w of [...this.waiters]) {
        if (w.pred(rec)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(rec);
        }
      }
    }
  }

  /** Last lines of both streams, for error messages. */
  tail(lines = 30): string {
    const pick = (s: string) => s.split("\n").slice(-lines).join("\n");
    return `--- ${this.name} stderr ---\n${pick(this.err)}\n--- ${this.name} stdout ---\n${pick(this.out)}`;
  }

  logs(): LogRecord[] {
    return [...this.records];
  }
  stdout(): string {
    return this.out;
  }
  stderr(): string {
    return this.err;
  }

  waitForLog(match: ((r: LogRecord) => boolean) | Partial<LogRecord>, timeoutMs = 30_000): Promise<LogRecord> {
    const pred = matcher(match);
    const hit = this.records.find(pred);
    if (hit) return Promise.resolve(hit);
    if (this.exit) return Promise.reject(new Error(`app ${this.name} has exited; no matching log line\n${this.tail()}`));
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (r: LogRecord) => (clearTimeout(timer), resolve(r)),
        reject: (e: Error) => (clearTimeout(timer), reject(e)),
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no matching log line from app ${this.name} within ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  fetch(pathname: string, init: RequestInit & { auth?: boolean } = {}): Promise<Response> {
    const { auth, ...rest } = init;
    const headers = new Headers(rest.headers);
    const token = this.env.SYNAPSE_API_TOKEN;
    if (token && auth !== false && !headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
    return fetch(new URL(pathname, this.url), { ...rest, headers, signal: rest.signal ?? AbortSignal.timeout(60_000) });
  }

  async json<T>(pathname: string, init: { method?: string; body?: unknown; headers?: Record<string, string>; auth?: boolean } = {}): Promise<{ status: number; body: T }> {
    const method = init.method ?? (init.body === undefined ? "GET" : "POST");
    const headers: Record<string, string> = { accept: "application/json", ...init.headers };
    if (init.body !== undefined) headers["content-type"] ??= "application/json";
    const res = await this.fetch(pathname, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body), ...(init.auth === undefined ? {} : { auth: init.auth }) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text === "" ? null : JSON.parse(text);
    } catch {
      // not JSON: the text as is
    }
    return { status: res.status, body: body as T };
  }

  db(): Db {
    this.dbClient ??= openDatabase(this.dirs.database, { migrate: false });
    return this.dbClient;
  }

  readonly trpc = {
    query: <T>(procedure: string, input?: unknown) => {
      const q = input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`;
      return this.trpcCall<T>(`/api/trpc/${procedure}${q}`, "GET");
    },
    mutation: <T>(procedure: string, input?: unknown) => this.trpcCall<T>(`/api/trpc/${procedure}`, "POST", input ?? {}),
  };

  private async trpcCall<T>(pathname: string, method: string, body?: unknown): Promise<TrpcResult<T>> {
    const r = await this.json<{ result?: { data?: T }; error?: TrpcResult["error"] }>(pathname, { method, ...(body === undefined ? {} : { body }) });
    const b = r.body && typeof r.body === "object" ? r.body : {};
    return { status: r.status, ...(b.result ? { data: b.result.data as T } : {}), ...(b.error ? { error: b.error } : {}) };
  }

  killNow(): void {
    if (this.running) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // gone
      }
    }
    killLeftoverServers(this.dirs.stateDir);
  }

  stop(signal: NodeJS.Signals = "SIGTERM", options: { timeoutMs?: number; keepServers?: boolean } = {}): Promise<StopResult> {
    this.stopping ??= this.doStop(signal, options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, options.keepServers === true);
    return this.stopping;
  }

  private async doStop(signal: NodeJS.Signals, timeoutMs: number, keepServers: boolean): Promise<StopResult> {
    const started = performance.now();
    let killed = false;
    if (this.running) {
      this.child.kill(signal);
      const timer = setTimeout(() => {
        killed = true;
        this.child.kill("SIGKILL");
      }, timeoutMs);
      await this.exited;
      clearTimeout(timer);
    }
    const ms = Math.round(performance.now() - started);
    // keepServers: a test of re-adoption wants the servers to outlive the app (the next instance checks them).
    const leftovers = keepServers ? [] : killLeftoverServers(this.dirs.stateDir);
    await this.dbClient?.$disconnect().catch(() => undefined);
    this.dbClient = null;
    await this.saveLog().catch(() => undefined);
    return { code: this.exit!.code, signal: this.exit!.signal, killed, ms, log: this.logs(), stdout: this.out, stderr: this.err, leftovers };
  }

  private async saveLog(): Promise<void> {
    await mkdir(LOGS_DIR, { recursive: true });
    await writeFile(path.join(LOGS_DIR, `${this.name}.log`), `# ${this.name} ${this.url} pid ${this.pid} exit ${JSON.stringify(this.exit)}\n# stderr\n${this.err}\n# stdout\n${this.out}`);
  }

  async restart(options: { env?: Record<string, string | undefined>; startTimeoutMs?: number } = {}): Promise<AppServer> {
    // After a stop(…, { keepServers: true }) this reuses that result: the servers stay up for the new instance.
    await this.stop();
    const env: Record<string, string | undefined> = { ...this.env, ...options.env };
    return launch({ ...this.startOptions, dirs: this.dirs, port: this.port, imageDir: this.imageDir, env, ...(options.startTimeoutMs ? { startTimeoutMs: options.startTimeoutMs } : {}) }, nextName(this.name));
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.stop();
    await this.dbClient?.$disconnect().catch(() => undefined);
    this.dbClient = null;
    tracked.delete(this);
    const users = (dirUsers.get(this.dirs.root) ?? 1) - 1;
    if (users <= 0) {
      dirUsers.delete(this.dirs.root);
      // The last instance on these folders: servers kept for re-adoption end here too.
      killLeftoverServers(this.dirs.stateDir);
      await rm(this.dirs.root, { recursive: true, force: true });
    } else dirUsers.set(this.dirs.root, users);
  }
}

function nextName(name: string): string {
  const m = /^(.*)-restart(\d+)$/.exec(name);
  return m ? `${m[1]}-restart${Number(m[2]) + 1}` : `${name}-restart1`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Kills the process groups of llama-servers that the agent's records (in the
 * app's state dir) show alive. Only a record whose pid still runs the
 * recorded binary is trusted (pid reuse).
 */
export function killLeftoverServers(stateDir: string): { id: string; pid: number }[] {
  const dir = path.join(stateDir, "servers");
  if (!existsSync(dir)) return [];
  const killed: { id: string; pid: number }[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".json"))) {
    try {
      const rec = JSON.parse(readFileSync(path.join(dir, name), "utf8")) as { id: string; pid: number; pgid: number; binary: string };
      if (!isAlive(rec.pid)) continue;
      let cmdline = "";
      try {
        cmdline = readFileSync(`/proc/${rec.pid}/cmdline`, "utf8");
      } catch {
        continue;
      }
      if (!cmdline.startsWith(rec.binary)) continue;
      try {
        process.kill(-rec.pgid, "SIGKILL");
      } catch {
        process.kill(rec.pid, "SIGKILL");
      }
      killed.push({ id: rec.id, pid: rec.pid });
    } catch {
      // unreadable record: nothing to trust
    }
  }
  return killed;
}

async function waitForHealth(app: AppServerImpl, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  for (let wait = 25; ; wait = Math.min(wait * 2, 250)) {
    if (!app.running) {
      const exit = await app.exited;
      throw new Error(`app ${app.name} exited (${exit.signal ?? `code ${exit.code}`}) before /api/health answered 200\n${app.tail()}`);
    }
    try {
      const res = await fetch(`${app.url}/api/health`, { signal: AbortSignal.timeout(Math.max(500, Math.min(5000, deadline - Date.now()))) });
      if (res.status === 200) return;
      last = `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`app ${app.name} did not answer /api/health 200 within ${timeoutMs} ms (last: ${last})\n${app.tail()}`);
    await delay(wait);
  }
}

const namesUsed = new Map<string, number>();

/** A log-file name unique in this worker: the given name, or the test file's, with -2, -3… on repeats. */
function uniqueName(given: string | undefined): string {
  let base = given;
  if (!base) {
    const testPath = expect.getState().testPath;
    base = testPath ? path.basename(testPath).replace(/\.(e2e\.)?test\.ts$/, "") : "app";
  }
  const n = (namesUsed.get(base) ?? 0) + 1;
  namesUsed.set(base, n);
  return n === 1 ? base : `${base}-${n}`;
}

async function launch(options: StartAppOptions, exactName?: string): Promise<AppServer> {
  const name = exactName ?? uniqueName(options.name);
  const imageDir = resolveImageDir(options.imageDir);
  const dirs = options.dirs ?? (await makeAppDirs(name));
  const port = options.port ?? (await freePort());
  const defaults: Record<string, string> = {
    HOSTNAME: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: `file:${dirs.database}`,
    SYNAPSE_STATE_DIR: dirs.stateDir,
    SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
    SYNAPSE_SSH_DIR: dirs.sshDir,
    LOG_LEVEL: "info",
    ...(process.env.LLAMA_SERVER_BIN ? { LLAMA_SERVER_BIN: process.env.LLAMA_SERVER_BIN } : {}),
  };
  const env: Record<string, string> = { ...defaults };
  for (const [k, v] of Object.entries(options.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  env.PORT = String(port);
  const app = new AppServerImpl(name, port, dirs, env, imageDir, options);
  if (options.waitForHealth === false) return app;
  try {
    await waitForHealth(app, options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS);
  } catch (err) {
    await app.stop("SIGKILL", { timeoutMs: 5000 });
    throw err;
  }
  return app;
}

/** Starts an app instance and waits until /api/health answers 200 (see StartAppOptions). */
export function startApp(options: StartAppOptions = {}): Promise<AppServer> {
  return launch(options);
}

/** Stops every instance not yet disposed (SIGTERM, then SIGKILL at the deadline) and removes their folders. */
export async function stopAllApps(): Promise<void> {
  const apps = [...tracked];
  await Promise.all(apps.map((a) => a.dispose().catch(() => a.killNow())));
}

/** Instances started in this worker that are still running. */
export function runningApps(): readonly AppServer[] {
  return [...tracked].filter((a) => a.running);
}
