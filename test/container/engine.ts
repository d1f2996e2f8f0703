/**
 * The container engine for the compose test: podman's Docker-compatible API
 * (`podman system service`, owned and reaped here) and Debian's
 * `docker-compose` 1.29 driving it through DOCKER_HOST, exactly as a user
 * with a Docker engine would run `docker-compose`; or, with
 * SYNAPSE_DOCKER_HOST=unix:///var/run/docker.sock, a Docker engine itself.
 * Every command is an argv
 * array with a deadline; results are data ({code, stdout, stderr, ms}).
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { REPO_ROOT } from "../harness/app-build";

/** podman settings for this kind of machine (runc, no default ulimits, cgroupfs, catatonit). */
export const REPO_CONTAINERS_CONF = path.join(REPO_ROOT, "scripts", "podman", "containers.conf");
/** The compose file's `image:`; scripts/podman/build-image.sh tags it. */
export const IMAGE = "synapse-engine:local";

export interface RunResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs a program to completion (argv, no shell) with a deadline; a non-zero exit is data, not an exception. */
export function run(file: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: options.cwd, env: options.env, timeout: options.timeoutMs, killSignal: "SIGKILL", maxBuffer: 16 * 1024 * 1024, encoding: "utf8" }, (err, stdout, stderr) => {
      const ms = Math.round(performance.now() - started);
      if (err && typeof err.code !== "number" && !err.killed && err.signal == null) return reject(new Error(`${file} ${args.join(" ")}: ${err.message}`, { cause: err }));
      if (err?.killed) return reject(new Error(`${file} ${args.join(" ")} did not finish within ${options.timeoutMs} ms\n${stdout}\n${stderr}`));
      resolve({ code: err ? (typeof err.code === "number" ? err.code : null) : 0, signal: err?.signal ?? null, stdout, stderr, ms });
    });
  });
}

/** The environment podman and docker-compose run with. */
export function engineEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? REPO_CONTAINERS_CONF, ...extra };
}

/** GET on the engine's Docker API socket; resolves to {status, body}. */
export function dockerApi<T = unknown>(socketPath: string, pathname: string, timeoutMs = 10_000): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: pathname, method: "GET", timeout: timeoutMs }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        if (text.length < 4 * 1024 * 1024) text += d;
      });
      res.on("end", () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // plain text (e.g. /_ping's OK)
        }
        resolve({ status: res.statusCode ?? 0, body: body as T });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`docker API ${pathname}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PodmanService {
  socketPath: string;
  /** `unix://<socket>` for DOCKER_HOST. */
  dockerHost: string;
  stop(): Promise<void>;
}

/**
 * Starts `podman system service --time=0` on a socket in `dir` and waits
 * (deadline `startTimeoutMs`) until `/_ping` answers. The caller owns it: stop()
 * sends SIGTERM, then SIGKILL after 10 s, and waits for the exit.
 */
export async function startPodmanService(dir: string, startTimeoutMs = 30_000): Promise<PodmanService> {
  const socketPath = path.join(dir, "podman.sock");
  const child: ChildProcess = spawn("podman", ["system", "service", "--time=0", `unix://${socketPath}`], { env: engineEnv(), stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-8000)));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + startTimeoutMs;
  for (let wait = 50; ; wait = Math.min(wait * 2, 500)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`podman system service exited (code ${child.exitCode}): ${stderr}`);
    if (existsSync(socketPath)) {
      const ping = await dockerApi(socketPath, "/_ping", 2000).catch(() => null);
      if (ping?.status === 200) break;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`podman system service did not answer /_ping on ${socketPath} within ${startTimeoutMs} ms: ${stderr}`);
    }
    await delay(wait);
  }
  return { socketPath, dockerHost: `unix://${socketPath}`, stop };
}

/**
 * The engine the check runs against: SYNAPSE_DOCKER_HOST (`unix://…`, e.g. a
 * Docker engine's socket) when set, else a podman service started in `dir`.
 */
export async function connectEngine(dir: string): Promise<PodmanService> {
  const given = process.env.SYNAPSE_DOCKER_HOST;
  if (!given) return startPodmanService(dir);
  if (!given.startsWith("unix://")) throw new Error(`SYNAPSE_DOCKER_HOST must be unix:///path/to/socket (got ${given})`);
  const socketPath = given.slice("unix://".length);
  const ping = await dockerApi(socketPath, "/_ping", 5000).catch((err: unknown) => ({ status: 0, body: String(err) }));
  if (ping.status !== 200) throw new Error(`no container engine answers on ${given}: ${JSON.stringify(ping.body)}`);
  return { socketPath, dockerHost: given, stop: async () => undefined };
}

/** Whether the engine has the image (`docker image inspect`). */
export async function hasImage(socketPath: string, image: string): Promise<boolean> {
  return (await dockerApi(socketPath, `/images/${encodeURIComponent(image)}/json`)).status === 200;
}
