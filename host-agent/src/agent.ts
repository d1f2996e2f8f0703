/**
 * The host agent as an object: `createHostAgent(config)` gives an `AgentApi`
 * (the same interface every link exposes) backed by a Supervisor on this
 * machine. `call` validates params with the protocol's schemas, dispatches,
 * and always rejects with an AgentError.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import type { AgentConfig } from "./env.ts";
import { checkModelPath } from "./discovery/check-path.ts";
import { discoverModels } from "./discovery/discover.ts";
import {
  AgentError,
  AGENT_FEATURES,
  PROTOCOL_VERSION,
  parseParams,
  serverSpecSchema,
  type AgentApi,
  type AgentEvent,
  type Method,
  type Params,
  type ParsedParams,
  type Result,
  type ServerSpec,
} from "./protocol.ts";
import { readHostMemory } from "./memory/read.ts";
import { describeLlamaServer, findLlamaServer } from "./supervisor/binary.ts";
import { errorMessage } from "./shared/error-text.ts";
import { createLogger, type Logger } from "./supervisor/logger.ts";
import { writeFileAtomic } from "./supervisor/records.ts";
import { Supervisor } from "./supervisor/supervisor.ts";
import { describeHolder, portHolder } from "./supervisor/port.ts";

export interface HostAgentOptions extends AgentConfig {
  logger?: Logger;
  healthTimeoutMs?: number;
  exitPollMs?: number;
  exitPollIdentityEvery?: number;
  /** Called after a `shutdown` call has produced its result (the CLI ends the process there). */
  onShutdown?: () => void;
  /** Re-adopt live servers from the records (default true). */
  adopt?: boolean;
  /** Spawn servers from a small helper process (for an agent inside a big process; see supervisor/launcher.ts). */
  spawnHelper?: boolean;
  /** Variables every server gets besides its minimal environment (PATH, HOME, locale, temp folder; see supervisor/server-env.ts). */
  serverEnv?: Record<string, string>;
}

export interface HostAgent extends AgentApi {
  /** Resolves once records have been re-adopted; calls wait for it on their own. */
  readonly ready: Promise<void>;
  readonly supervisor: Supervisor;
  /** The desired set last pushed with `apply` (what `start-metal-servers` starts). */
  desired(): Promise<ServerSpec[]>;
  /** Stops watching; running servers keep running. */
  close(): void;
}

export const AGENT_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
})();

const desiredFileSchema = z.object({ version: z.literal(1), appliedAt: z.string(), specs: z.array(serverSpecSchema) });

function toAgentError(err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  return new AgentError({ code: "INTERNAL", message: (err as Error)?.message ?? String(err) }, { cause: err });
}

export function createHostAgent(config: HostAgentOptions): HostAgent {
  const logger = config.logger ?? createLogger(config.logLevel);
  const supervisor = new Supervisor({
    stateDir: config.stateDir,
    modelRoots: config.modelRoots,
    llamaServerBin: config.llamaServerBin,
    logMaxBytes: config.logMaxBytes,
    healthIntervalMs: config.healthIntervalMs,
    healthTimeoutMs: config.healthTimeoutMs,
    exitPollMs: config.exitPollMs,
    exitPollIdentityEvery: config.exitPollIdentityEvery,
    logger,
    spawnHelper: config.spawnHelper,
    serverEnv: config.serverEnv,
  });
  const desiredPath = path.join(config.stateDir, "desired.json");
  // Not fatal here: a start creates what it needs again, and reports why it cannot.
  const prepared = supervisor.prepareStateDir().catch((err: unknown) => logger.error("cannot create the state folder", { stateDir: config.stateDir, error: err }));
  const ready = prepared.then(() =>
    (config.adopt ?? true)
      ? supervisor.adopt().then(
          (r) => {
            if (r.adopted.length || r.dropped.length) logger.info("re-adopted servers from records", r);
          },
          (err) => logger.error("re-adoption failed", { error: err }),
        )
      : undefined,
  );

  const desired = async (): Promise<ServerSpec[]> => {
    let text: string;
    try {
      text = readFileSync(desiredPath, "utf8");
    } catch {
      return [];
    }
    const r = desiredFileSchema.safeParse(JSON.parse(text));
    if (!r.success) throw new AgentError({ code: "INTERNAL", message: `${desiredPath} is not a valid desired set: ${r.error.message}` }, { cause: r.error });
    return r.data.specs;
  };

  const handlers: { [M in Method]: (p: ParsedParams<M>) => Promise<Result<M>> } = {
    hello: async (p) => {
      if (p.protocolVersion !== PROTOCOL_VERSION) {
        const message = `protocol version ${p.protocolVersion} is not supported; this agent speaks version ${PROTOCOL_VERSION}`;
        throw new AgentError({ code: "BAD_REQUEST", message, issues: [{ path: "protocolVersion", message }] });
      }
      return {
        protocolVersion: PROTOCOL_VERSION,
        agentVersion: AGENT_VERSION,
        hostname: os.hostname(),
        platform: process.platform,
        arch: process.arch,
        modelRoots: config.modelRoots,
        llamaServer: await describeLlamaServer(config.llamaServerBin),
        features: [...AGENT_FEATURES],
      };
    },
    apply: async (p) => {
      const ids = new Set<string>();
      const ports = new Set<number>();
      for (const [i, s] of p.specs.entries()) {
        if (ids.has(s.id)) throw new AgentError({ code: "BAD_REQUEST", message: `specs.${i}.id: ${s.id} appears twice`, issues: [{ path: `specs.${i}.id`, message: `${s.id} appears twice` }] });
        if (ports.has(s.port)) throw new AgentError({ code: "BAD_REQUEST", message: `specs.${i}.port: ${s.port} is used by two specs`, issues: [{ path: `specs.${i}.port`, message: `${s.port} is used by two specs` }] });
        ids.add(s.id);
        ports.add(s.port);
      }
      await writeFileAtomic(desiredPath, `${JSON.stringify({ version: 1, appliedAt: new Date().toISOString(), specs: p.specs }, null, 2)}\n`);
      return { count: p.specs.length };
    },
    start: (p) => supervisor.start(p.spec),
    stop: (p) => supervisor.stop(p.id, p.graceMs, p.cause),
    stopAll: (p) => supervisor.stopAll(p.graceMs, p.cause),
    status: async (p) => supervisor.status(p.ids),
    logs: (p) => supervisor.logs(p.id, p.lines, p.grep),
    renameLogs: (p) => supervisor.renameLogs(p.from, p.to),
    logNote: (p) => supervisor.logNote(p.id, p.text),
    discover: () => discoverModels(config.modelRoots),
    checkModelPath: (p) => checkModelPath(p.path, config.modelRoots),
    portHolder: async (p) => {
      const held = await portHolder(p.port, p.bindAddress);
      return { port: p.port, holder: held ? describeHolder(held) : null };
    },
    hostMemory: async () => {
      const found = await findLlamaServer(config.llamaServerBin).then((f) => ({ bin: f.path, problem: null }), (err: unknown) => ({ bin: null, problem: errorMessage(err) }));
      const [load1 = 0, load5 = 0, load15 = 0] = os.loadavg();
      return { ...(await readHostMemory({ llamaServerBin: found.bin, llamaServerProblem: found.problem })), load: { cpus: os.availableParallelism(), load1, load5, load15 } };
    },
    shutdown: async (p) => {
      // The servers this stop ended, not every one it manages (one stopped long ago was not stopped now).
      const running = supervisor.runningIds();
      const stopped = p.stopServers ? (await supervisor.stopAll()).filter((s) => running.has(s.id)).map((s) => s.id) : [];
      if (config.onShutdown) setImmediate(config.onShutdown);
      return { stopped };
    },
  };

  const call = async <M extends Method>(method: M, params: Params<M>, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Result<M>> => {
    if (!Object.hasOwn(handlers, method)) throw new AgentError({ code: "BAD_REQUEST", message: `unknown method ${JSON.stringify(method)}` });
    const parsed = parseParams(method, params);
    await ready;
    const work = (handlers[method] as (p: ParsedParams<M>) => Promise<Result<M>>)(parsed).catch((err: unknown) => {
      throw toAgentError(err);
    });
    if (options?.timeoutMs === undefined && !options?.signal) return work;
    // The caller stops waiting; the operation itself runs to its end (a half-done start or stop is worse).
    return new Promise<Result<M>>((resolve, reject) => {
      const cleanups: (() => void)[] = [];
      const finish = (fn: () => void) => {
        for (const c of cleanups) c();
        fn();
      };
      if (options.timeoutMs !== undefined) {
        const t = setTimeout(() => finish(() => reject(new AgentError({ code: "TIMEOUT", message: `${method} did not finish within ${options.timeoutMs} ms` }))), options.timeoutMs);
        cleanups.push(() => clearTimeout(t));
      }
      if (options.signal) {
        const onAbort = () => finish(() => reject(new AgentError({ code: "TIMEOUT", message: `${method} was aborted by the caller` }, { cause: options.signal?.reason })));
        if (options.signal.aborted) return onAbort();
        options.signal.addEventListener("abort", onAbort, { once: true });
        cleanups.push(() => options.signal?.removeEventListener("abort", onAbort));
      }
      work.then((v) => finish(() => resolve(v)), (e: unknown) => finish(() => reject(e)));
    });
  };

  return {
    ready,
    supervisor,
    desired,
    call,
    onEvent: (listener: (e: AgentEvent) => void) => supervisor.onEvent(listener),
    close: () => supervisor.close(),
  };
}
