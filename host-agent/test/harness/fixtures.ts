/**
 * Per-test temp folders (state dir + model root) and agent configs, plus
 * helpers that check what the OS says about processes. Every agent made here
 * is tracked so afterEach can stop its servers: nothing outlives a test.
 */
import { mkdtemp, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createHostAgent, type HostAgent, type HostAgentOptions } from "../../src/agent.ts";
import type { ServerSpecInput, AgentEvent } from "../../src/protocol.ts";
import { createLogger } from "../../src/supervisor/logger.ts";

export interface TestDirs {
  root: string;
  stateDir: string;
  modelRoot: string;
  cleanup: () => Promise<void>;
}

export async function testDirs(prefix = "synapse-agent-"): Promise<TestDirs> {
  const root = await mkdtemp(path.join(os.tmpdir(), prefix));
  const stateDir = path.join(root, "state");
  const modelRoot = path.join(root, "models");
  await mkdir(stateDir, { recursive: true });
  await mkdir(modelRoot, { recursive: true });
  return { root, stateDir, modelRoot, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export function agentOptions(dirs: TestDirs, bin: string, extra: Partial<HostAgentOptions> = {}): HostAgentOptions {
  return {
    llamaServerBin: bin,
    stateDir: dirs.stateDir,
    modelRoots: [dirs.modelRoot],
    logMaxBytes: 1024 * 1024,
    healthIntervalMs: 500,
    logLevel: "silent",
    logger: createLogger(process.env.SYNAPSE_TEST_LOG === "1" ? "debug" : "silent"),
    ...extra,
  };
}

/** Small, fast server settings for tiny models on a 2-core machine (the app's tests use them as global defaults). */
export const TINY_SERVER_SETTINGS = {
  ctxSize: 256,
  gpuLayers: 0,
  threads: 1,
  batchSize: 64,
  ubatchSize: 64,
  flashAttn: "off",
  loadMode: "mmap",
  parallel: 1,
  readinessDeadlineMs: 30_000,
  stopGraceMs: 3000,
} as const;

export function specFor(id: string, modelPath: string, port: number, extra: Partial<ServerSpecInput> = {}): ServerSpecInput {
  return {
    id,
    modelPath,
    port,
    ...TINY_SERVER_SETTINGS,
    ...extra,
  };
}

/** Collects events and lets a test wait for one that matches, with a deadline. */

/**
 * Resolves once the agent's log of server `id` holds llama-server's "listening on" line (10 s deadline, then
 * throws). llama-server answers /health 200 before it installs its SIGTERM handler and logs that line: a stop in
 * between ends it by SIGTERM's default action, its queued log lines lost (3 of 30 such stops under load; CI runs
 * failed so). A test about what the log holds after a stop waits for it first.
 */
export async function untilListening(agent: HostAgent, id: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await agent.call("logs", { id, lines: 5000 })).lines.some((l) => /listening on http:\/\//.test(l))) {
    if (Date.now() > until) throw new Error(`llama-server ${id} logged no 'listening on' within ${timeoutMs} ms of being ready`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The status a state event carries; null for a log line. */
export const stateOf = (e: AgentEvent) => (e.kind === "state" ? e.status : null);

export function eventRecorder(agent: HostAgent) {
  const events: AgentEvent[] = [];
  const waiters: { pred: (e: AgentEvent) => boolean; resolve: (e: AgentEvent) => void }[] = [];
  const off = agent.onEvent((e) => {
    events.push(e);
    for (const w of [...waiters]) if (w.pred(e)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(e);
    }
  });
  return {
    events,
    off,
    waitFor(pred: (e: AgentEvent) => boolean, timeoutMs = 10_000): Promise<AgentEvent> {
      const hit = events.find(pred);
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching event within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({ pred, resolve: (e) => (clearTimeout(t), resolve(e)) });
      });
    },
  };
}

/** Agents made by tests; `stopEverything` stops their servers and closes them. */
export class AgentPool {
  private agents: HostAgent[] = [];
  make(opts: HostAgentOptions): HostAgent {
    const a = createHostAgent(opts);
    this.agents.push(a);
    return a;
  }
  async stopEverything(): Promise<void> {
    for (const a of this.agents.reverse()) {
      await a.call("stopAll", { graceMs: 500 }).catch(() => undefined);
      a.close();
    }
    this.agents = [];
  }
}

/** kill(pid, 0), written here rather than taken from process-table.ts: tests judge the agent with their own means. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A live process that is not a zombie (a dead child of a dead parent still answers kill -0 until reaped). */
export function isLiveProcess(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc (macOS): kill -0 is the answer
  }
}

/** Live (non-zombie) processes whose argv contains `needle` exactly (a test's unique model path). */
export async function pidsRunning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const [cmdline, stat] = await Promise.all([readFile(`/proc/${name}/cmdline`, "utf8"), readFile(`/proc/${name}/stat`, "utf8")]);
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
      if (state !== "Z" && cmdline.split("\0").includes(needle)) out.push(Number(name));
    } catch {
      // exited while we looked
    }
  }
  return out;
}
