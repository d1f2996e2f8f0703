/**
 * Reads the host's memory (the `hostMemory` method): runs the platform's commands with execFile (no
 * shell) and a deadline each, parses them (parse.ts) and chooses the budget (budget.ts). A reader that
 * fails is named in `problems`; the rest still count.
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import os from "node:os";
import type { HostMemory, MemoryDevice } from "../protocol.ts";
import { errorMessage } from "../shared/error-text.ts";
import { chooseBudget } from "./budget.ts";
import { parseListDevices, parseMeminfo, parseSysctlNumber, parseVmStat } from "./parse.ts";

/** An exec result as data: exit code (null when killed), output, and why it failed. */
export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Set when it did not run or did not exit 0 ("timed out after 5000 ms", "spawn ENOENT"). */
  error: string | null;
}
export type RunCommand = (file: string, args: readonly string[], timeoutMs: number) => Promise<CommandResult>;

/** Per command. `--list-devices` initialises every GPU backend (Metal: about a second when cold). */
const SYSCTL_DEADLINE_MS = 5_000;
const LIST_DEVICES_DEADLINE_MS = 20_000;
/** Device totals do not change while the binary stays the same; free figures are refreshed this often. */
const DEVICES_MAX_AGE_MS = 60_000;

export const runCommand: RunCommand = (file, args, timeoutMs) =>
  new Promise((resolve) => {
    execFile(file, [...args], { timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 1024 * 1024, encoding: "utf8", windowsHide: true }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr, error: null });
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: unknown };
      const code = typeof e.code === "number" ? e.code : null;
      const why = e.killed ? `timed out after ${timeoutMs} ms` : code !== null ? `exit ${code}${stderr.trim() ? `: ${stderr.trim().split("\n").at(-1)}` : ""}` : errorMessage(err);
      resolve({ code, stdout: stdout ?? "", stderr: stderr ?? "", error: `${file} ${args.join(" ")}: ${why}` });
    });
  });

export interface ReadOptions {
  platform?: string;
  /** The llama-server to ask for its devices; null when none was found (`llamaServerProblem` says why). */
  llamaServerBin: string | null;
  llamaServerProblem?: string | null;
  run?: RunCommand;
  readText?: (file: string) => Promise<string>;
  now?: () => Date;
}

const devicesCache = new Map<string, { at: number; devices: MemoryDevice[]; problem: string | null }>();

async function listDevices(bin: string, run: RunCommand, nowMs: number): Promise<{ devices: MemoryDevice[]; problem: string | null }> {
  const hit = devicesCache.get(bin);
  if (hit && nowMs - hit.at < DEVICES_MAX_AGE_MS) return hit;
  const r = await run(bin, ["--list-devices"], LIST_DEVICES_DEADLINE_MS);
  const text = `${r.stdout}\n${r.stderr}`;
  const found = { at: nowMs, devices: parseListDevices(text), problem: r.error ?? (text.includes("Available devices:") ? null : `${bin} --list-devices printed no device list`) };
  if (devicesCache.size >= 16) devicesCache.clear();
  devicesCache.set(bin, found);
  return found;
}

/** The host's memory now. Never throws: what could not be read is in `problems`. */
export async function readHostMemory(options: ReadOptions): Promise<HostMemory> {
  const platform = options.platform ?? process.platform;
  const run = options.run ?? runCommand;
  const readText = options.readText ?? ((f: string) => readFile(f, "utf8"));
  const at = (options.now ?? (() => new Date()))();
  const problems: string[] = [];
  const devicesP = options.llamaServerBin ? listDevices(options.llamaServerBin, run, at.getTime()) : Promise.resolve({ devices: [], problem: options.llamaServerProblem ?? "llama-server not found" });

  let totalBytes: number | null = null;
  let availableBytes: number | null = null;
  let wiredLimitMiB: number | null = null;
  if (platform === "darwin") {
    const [mem, wired, vm] = await Promise.all([
      run("/usr/sbin/sysctl", ["-n", "hw.memsize"], SYSCTL_DEADLINE_MS),
      run("/usr/sbin/sysctl", ["-n", "iogpu.wired_limit_mb"], SYSCTL_DEADLINE_MS),
      run("/usr/bin/vm_stat", [], SYSCTL_DEADLINE_MS),
    ]);
    totalBytes = mem.error ? null : parseSysctlNumber(mem.stdout);
    if (totalBytes === null) problems.push(mem.error ?? `sysctl hw.memsize printed ${JSON.stringify(mem.stdout.slice(0, 80))}`);
    // Older macOS (before 14) and Intel Macs have no iogpu.wired_limit_mb: not a problem, just no limit set.
    wiredLimitMiB = wired.error ? null : parseSysctlNumber(wired.stdout);
    const v = vm.error ? null : parseVmStat(vm.stdout);
    availableBytes = v?.availableBytes ?? null;
    if (!v) problems.push(vm.error ?? "vm_stat printed no page counts");
  } else if (platform === "linux") {
    try {
      const m = parseMeminfo(await readText("/proc/meminfo"));
      if (m) ({ totalBytes, availableBytes } = m);
      else problems.push("/proc/meminfo has no MemTotal line");
    } catch (err) {
      problems.push(`/proc/meminfo: ${errorMessage(err)}`);
    }
  }
  if (totalBytes === null) {
    // A platform without a reader here, or a reader that failed: Node's figures, named as such.
    totalBytes = os.totalmem();
    availableBytes ??= os.freemem();
    if (platform !== "darwin" && platform !== "linux") problems.push(`no memory reader for platform ${platform}: Node's os.totalmem() used`);
  }
  const { devices, problem } = await devicesP;
  if (problem) problems.push(problem);
  const budget = chooseBudget({ platform, totalBytes, availableBytes, wiredLimitMiB, devices });
  return { platform, totalBytes, availableBytes, devices, ...budget, problems: problems.slice(0, 16).map((p) => p.slice(0, 1024)), at: at.toISOString() };
}
