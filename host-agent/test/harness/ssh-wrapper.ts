/**
 * Installs the real scripts/ssh-wrapper.sh (byte for byte) into a test
 * folder with its own ssh-wrapper.conf, so the agent it starts uses the
 * test's state dir, model root and llama-server, and its audit log is the
 * test's. The conf file sits next to the wrapper, where the wrapper reads it.
 */
import { chmod, copyFile, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
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

/**
 * The agents serving this test's sshd (`sessions`: its session processes):
 * `host-agent serve` processes below one of them. Not every agent on the
 * machine: other test files run theirs at the same time, and freezing one of
 * those would leave this test's call answered (and break theirs).
 */
export async function agentPids(sessions: number[]): Promise<number[]> {
  const under = new Set(sessions);
  const parentOf = async (pid: number): Promise<number | null> => {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ") ".
    const ppid = stat === null ? NaN : Number(stat.slice(stat.lastIndexOf(") ") + 2).split(" ")[1]);
    return Number.isInteger(ppid) && ppid > 0 ? ppid : null;
  };
  const out: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const cmd = await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "");
    const argv = cmd.split("\0");
    if (!argv.includes(AGENT_BIN) || !argv.includes("serve")) continue;
    for (let pid: number | null = Number(name), hops = 0; pid !== null && hops < 16; pid = await parentOf(pid), hops++) {
      if (under.has(pid)) {
        out.push(Number(name));
        break;
      }
    }
  }
  return out;
}
