/**
 * Installs the real scripts/ssh-wrapper.sh (byte for byte) into a test
 * folder with its own ssh-wrapper.conf, so the agent it starts uses the
 * test's state dir, model root and llama-server, and its audit log is the
 * test's. The conf file sits next to the wrapper, where the wrapper reads it.
 */
import { chmod, copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { TestDirs } from "./fixtures.ts";
import { llamaServerBin } from "./llama-server.ts";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");
export const WRAPPER_SOURCE = path.join(REPO_ROOT, "scripts", "ssh-wrapper.sh");
export const AGENT_BIN = path.join(REPO_ROOT, "host-agent", "bin", "host-agent.mjs");

export interface InstalledWrapper {
  path: string;
  confPath: string;
  auditLog: string;
}

export async function installWrapper(dir: string, agentEnv: Record<string, string>): Promise<InstalledWrapper> {
  await mkdir(dir, { recursive: true });
  const wrapper = path.join(dir, "ssh-wrapper.sh");
  await copyFile(WRAPPER_SOURCE, wrapper);
  await chmod(wrapper, 0o755);
  const auditLog = path.join(dir, "audit", "ssh-wrapper.log");
  const confPath = path.join(dir, "ssh-wrapper.conf");
  const lines = [
    `SYNAPSE_HOST_AGENT_BIN=${AGENT_BIN}`,
    `SYNAPSE_NODE=${process.execPath}`,
    `SYNAPSE_WRAPPER_AUDIT_LOG=${auditLog}`,
    ...Object.entries(agentEnv).map(([k, v]) => `${k}=${v}`),
  ];
  await writeFile(confPath, `${lines.join("\n")}\n`, { mode: 0o600 });
  return { path: wrapper, confPath, auditLog };
}

/**
 * installWrapper for a test's host reached over ssh (in `remote.root`/wrapper): its agent uses that host's state
 * folder and model root, this machine's llama-server and warn-level logs; `extra` adds to those or overrides them
 * (e.g. SYNAPSE_HEALTH_INTERVAL_MS).
 */
export function installHostWrapper(remote: Pick<TestDirs, "root" | "stateDir" | "modelRoot">, extra: Record<string, string> = {}): Promise<InstalledWrapper> {
  return installWrapper(path.join(remote.root, "wrapper"), {
    SYNAPSE_STATE_DIR: remote.stateDir,
    SYNAPSE_MODEL_ROOTS: remote.modelRoot,
    LLAMA_SERVER_BIN: llamaServerBin(),
    SYNAPSE_LOG_LEVEL: "warn",
    ...extra,
  });
}
