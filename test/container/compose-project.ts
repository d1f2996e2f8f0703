/**
 * A folder laid out as a user's checkout is for `docker-compose up`: the
 * repository's docker-compose.yml (byte for byte), a `.env` beside it, the
 * `host-api/.ssh` folder it mounts and a models folder. Commands run with
 * docker-compose against the given engine, as the user would type them.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT } from "../harness/app-build";
import { LOGS_DIR } from "../harness/app-server";
import { dockerApi, engineEnv, run, type PodmanService, type RunResult } from "./engine";

export interface ComposeProject {
  dir: string;
  /** docker-compose's project name (`-p`); names the network and the volume. */
  name: string;
  modelsDir: string;
  sshDir: string;
  /** Rewrites `.env` (KEY=value lines). */
  writeEnv(vars: Record<string, string>): Promise<void>;
  /** `docker-compose -p NAME ARGS...` in the folder; a non-zero exit is data. */
  compose(args: string[], timeoutMs?: number): Promise<RunResult>;
  /** Same, but throws with the output unless it exits 0. */
  composeOk(args: string[], timeoutMs?: number): Promise<RunResult>;
  /** The service container's `docker inspect` (State, Config, NetworkSettings...). */
  inspect(): Promise<ContainerInspect>;
  /** The compose network's gateway: this machine's address as the container sees it. */
  gateway(): Promise<string>;
  /** The app's log lines (`docker-compose logs`), without compose's prefix. */
  logLines(): Promise<string[]>;
  /**
   * `docker-compose down ARGS...`, after saving the container's log to
   * test-results/logs/<name>-<n>.log (down removes the container and its log).
   */
  down(args?: string[]): Promise<RunResult>;
  dispose(): Promise<void>;
}

export interface ContainerInspect {
  Id: string;
  State: { Status: string; Running: boolean; ExitCode: number; Restarting?: boolean };
  Config: { User: string };
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
}

export async function makeComposeProject(engine: PodmanService, name: string): Promise<ComposeProject> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-compose-"));
  const modelsDir = path.join(dir, "models");
  const sshDir = path.join(dir, "host-api", ".ssh");
  await mkdir(modelsDir, { recursive: true });
  await mkdir(sshDir, { recursive: true });
  await copyFile(path.join(REPO_ROOT, "docker-compose.yml"), path.join(dir, "docker-compose.yml"));
  const env = engineEnv({ DOCKER_HOST: engine.dockerHost });
  // Only the .env speaks: none of this process's settings leak into the interpolation.
  for (const key of Object.keys(env)) if (key.startsWith("SYNAPSE_") || key.startsWith("PRAXIS_") || key === "USE_EXTERNAL_SERVERS" || key === "LOG_LEVEL") delete env[key];

  const compose = (args: string[], timeoutMs = 180_000) => run("docker-compose", ["-p", name, ...args], { cwd: dir, env, timeoutMs });
  const composeOk = async (args: string[], timeoutMs?: number) => {
    const r = await compose(args, timeoutMs);
    if (r.code !== 0) throw new Error(`docker-compose ${args.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  let saved = 0;
  const saveLog = async () => {
    const r = await compose(["logs", "--no-color", "--timestamps"], 60_000).catch(() => null);
    if (!r?.stdout) return;
    await mkdir(LOGS_DIR, { recursive: true });
    await writeFile(path.join(LOGS_DIR, `${name}-${++saved}.log`), r.stdout);
  };
  const containerId = async () => {
    const ids = (await composeOk(["ps", "-a", "-q", "synapse"])).stdout.trim().split("\n").filter(Boolean);
    if (ids.length !== 1) throw new Error(`expected one synapse container, found ${ids.length}`);
    return ids[0]!;
  };

  return {
    dir,
    name,
    modelsDir,
    sshDir,
    async writeEnv(vars) {
      await writeFile(path.join(dir, ".env"), Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(""));
    },
    compose,
    composeOk,
    async inspect() {
      const r = await dockerApi<ContainerInspect>(engine.socketPath, `/containers/${await containerId()}/json`);
      if (r.status !== 200) throw new Error(`inspect: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async gateway() {
      const r = await dockerApi<{ IPAM?: { Config?: { Gateway?: string }[] } }>(engine.socketPath, `/networks/${name}_default`);
      const gw = r.body.IPAM?.Config?.[0]?.Gateway;
      if (r.status !== 200 || !gw) throw new Error(`network ${name}_default has no gateway: ${r.status} ${JSON.stringify(r.body)}`);
      return gw;
    },
    async logLines() {
      const r = await composeOk(["logs", "--no-color", "synapse"]);
      return r.stdout.split("\n").map((l) => l.replace(/^\S+\s+\|\s?/, ""));
    },
    async down(args = []) {
      await saveLog();
      return composeOk(["down", ...args]);
    },
    async dispose() {
      await saveLog();
      await compose(["down", "-v", "--remove-orphans", "-t", "20"], 120_000).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The JSON log records among the app's log lines (the app logs one JSON object per line). */
export function logRecords(lines: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of lines) {
    const start = line.indexOf("{");
    if (start < 0) continue;
    try {
      const v: unknown = JSON.parse(line.slice(start));
      if (v && typeof v === "object") out.push(v as Record<string, unknown>);
    } catch {
      // not a JSON record
    }
  }
  return out;
}

export async function readText(file: string): Promise<string> {
  return readFile(file, "utf8").catch(() => "");
}
