/**
 * Everything a spawn needs, checked (model, port, binary) and made (argv,
 * log with its header), and the spawn itself: from this process, or from the
 * launcher helper (launcher.ts). Nothing here keeps state about a server.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync } from "node:fs";
import { AgentError, type ServerSpec } from "../protocol.ts";
import { errorMessage } from "../shared/error-text.ts";
import { RUN_HEADER_PREFIX } from "../shared/run-header.ts";
import { shellCommand } from "../shared/shell-quote.ts";
import { buildLaunch, type Launch } from "./argv.ts";
import { findLlamaServer, inspectLlamaServer, type LlamaServerBinary } from "./binary.ts";
import type { Launcher } from "./launcher.ts";
import { openLogForChild } from "./log-file.ts";
import { describeHolder, portHolder } from "./port.ts";
import type { Exit } from "./readiness.ts";
import { checkModelSet } from "./spec-check.ts";


export interface PreparedSpawn {
  binary: LlamaServerBinary;
  launch: Launch;
  /** The model path as the spec names it, checked (with every part of a split set) to resolve inside the model roots: what --model gets. */
  modelPath: string;
  logPath: string;
  /** The log opened for the child, and where its output begins. */
  log: { fd: number; offset: number; headerOffset: number };
}

export interface PrepareDeps {
  modelRoots: string[];
  llamaServerBin: string | null;
  logMaxBytes: number;
  logPath: string;
  /** A managed server (other than this id) that holds the port, if any. */
  managedHolder: (port: number) => { id: string; pid: number | null } | null;
}

/** Checks a spec and opens its log. Errors (AgentError) come in a fixed order: model, port, binary. */
export async function prepareSpawn(spec: ServerSpec, deps: PrepareDeps): Promise<PreparedSpawn> {
  // The model, port and binary checks are independent: one round of I/O for all three (with many starts at
  // once, every start's checks are done before the first spawn blocks the loop). The binary is run
  // (--version/--help, once per file) only for a spec that passed the other checks.
  const [modelCheck, holderCheck, binaryCheck] = await Promise.allSettled([
    checkModelSet(spec.modelPath, deps.modelRoots),
    portHolder(spec.port, spec.bindAddress),
    findLlamaServer(deps.llamaServerBin),
  ]);
  if (modelCheck.status === "rejected") throw modelCheck.reason;
  const modelPath = modelCheck.value;
  const other = deps.managedHolder(spec.port);
  if (other) throw new AgentError({ code: "CONFLICT", message: `port ${spec.port} is held by managed server ${other.id} (pid ${other.pid})`, data: { port: spec.port, pid: other.pid, id: other.id } });
  if (holderCheck.status === "rejected") throw holderCheck.reason;
  const holder = holderCheck.value;
  if (holder) throw new AgentError({ code: "CONFLICT", message: `cannot start ${spec.id}: ${describeHolder(holder)}`, data: holder });
  let binary: LlamaServerBinary;
  try {
    if (binaryCheck.status === "rejected") throw binaryCheck.reason;
    binary = await inspectLlamaServer(binaryCheck.value.path, binaryCheck.value.stat);
  } catch (cause) {
    throw new AgentError({ code: "FAILED", message: `cannot start ${spec.id}: ${errorMessage(cause)}` }, { cause });
  }
  const launch = buildLaunch(spec, modelPath, binary.capabilities);
  // The log is opened and its header written here, while other starts' checks are out, so no file work is left between the spawns.
  // Quoted as a shell reads it (and as the model page's preview shows it): a line copied from the log runs
  // the same argv, and a `$(…)` in a file name stays a file name.
  const header = `${RUN_HEADER_PREFIX}${spec.id} at ${new Date().toISOString()}: ${shellCommand([binary.path, ...launch.args])} ===`;
  try {
    const log = openLogForChild(deps.logPath, deps.logMaxBytes, header);
    return { binary, launch, modelPath, logPath: deps.logPath, log };
  } catch (cause) {
    throw new AgentError({ code: "FAILED", message: `cannot start ${spec.id}: cannot write its log ${deps.logPath}: ${errorMessage(cause)}` }, { cause });
  }
}

export interface SpawnedProcess {
  pid: number;
  /** Resolves with the exit as its parent saw it; `lost`: the helper died first, watch the pid instead. */
  exited: Promise<Exit & { lost?: boolean }>;
  /** Stops listening for the exit (the agent closes; the server lives on). */
  detach: () => void;
}

/**
 * Spawns the server detached (its own process group, so a stop reaches
 * everything it forks in the group, and a Ctrl-C aimed at the agent's
 * terminal does not hit it), output to its log. Closes the prepared log fd.
 * Throws the spawn error (binary not executable, helper gone).
 */
export async function spawnServer(prep: PreparedSpawn, env: Record<string, string>, launcher: Launcher | null): Promise<SpawnedProcess> {
  if (launcher) {
    closeSync(prep.log.fd); // the helper opens the log itself, by path
    const launched = await launcher.launch({ file: prep.binary.path, args: prep.launch.args, env, logPath: prep.logPath });
    return { pid: launched.pid, exited: launched.exited, detach: () => {} };
  }
  let child: ChildProcess;
  try {
    child = spawn(prep.binary.path, prep.launch.args, { detached: true, stdio: ["ignore", prep.log.fd, prep.log.fd], env: env as NodeJS.ProcessEnv });
  } finally {
    closeSync(prep.log.fd); // the child has its own copy
  }
  child.unref();
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const exited = new Promise<Exit>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  if (child.pid === undefined) throw await spawnError;
  return { pid: child.pid, exited, detach: () => child.removeAllListeners("exit") };
}
