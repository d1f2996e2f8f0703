/**
 * What the benchmarks share: command-line options, the llama-server binary,
 * CPU time read from /proc, and the statistics they print. (Free ports come from the test harness,
 * host-agent/test/harness/ports.ts.)
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

/** The value after `--name` on the command line, if any. */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

/**
 * LLAMA_SERVER_BIN, else the project's build (cached after the first; its
 * output names the binary last). `quiet`: no build output, and null instead
 * of an error when there is no binary.
 */
export function llamaServerBin(): string;
export function llamaServerBin(options: { quiet: true }): string | null;
export function llamaServerBin(options: { quiet?: boolean } = {}): string | null {
  if (process.env.LLAMA_SERVER_BIN) return process.env.LLAMA_SERVER_BIN;
  const script = path.resolve(import.meta.dirname, "../scripts/build-llama-server.sh");
  try {
    const out = execFileSync("bash", [script], { encoding: "utf8", stdio: ["ignore", "pipe", options.quiet ? "ignore" : "inherit"], timeout: options.quiet ? 60_000 : undefined });
    return out.trim().split("\n").pop() ?? null;
  } catch (err) {
    if (options.quiet) return null;
    throw err;
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The nearest-rank percentile (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export const ms = (x: number, digits = 1) => `${x.toFixed(digits)} ms`;

/**
 * `read(pid)` summed over a process and, with `children`, its child
 * processes (one level: nginx's workers under its master); NaN where /proc
 * is missing (not Linux) or the process is gone.
 */
function overProcesses(pid: number | undefined, children: boolean, read: (p: string) => number): number {
  try {
    if (pid === undefined) return NaN;
    let sum = read(String(pid));
    if (children) {
      for (const d of readdirSync("/proc")) {
        if (!/^\d+$/.test(d)) continue;
        try {
          // /proc/PID/stat: the parent's pid is the second field after the command's closing parenthesis.
          const stat = readFileSync(`/proc/${d}/stat`, "utf8");
          if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) sum += read(d);
        } catch {
          // the process ended meanwhile
        }
      }
    }
    return sum;
  } catch {
    return NaN;
  }
}

/**
 * CPU time a process's threads have run, in ms, summed from each thread's
 * /proc/PID/task/TID/schedstat (its first field: nanoseconds on a CPU;
 * Linux); with `children`, its child processes' threads too. Steadier
 * than wall time on a busy machine, and finer than /proc/PID/stat's ticks.
 */
export function cpuMs(pid: number | undefined, options: { children?: boolean } = {}): number {
  return (
    overProcesses(pid, options.children ?? false, (p) => {
      let ns = 0;
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        try {
          ns += Number(readFileSync(`/proc/${p}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
        } catch {
          // the thread ended meanwhile
        }
      }
      return ns;
    }) / 1e6
  );
}

/** Resident memory (VmRSS of /proc/PID/status, Linux) of a process, with `children` its child processes' too, in MB. */
export function rssMb(pid: number | undefined, options: { children?: boolean } = {}): number {
  return overProcesses(pid, options.children ?? false, (p) => {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  });
}

/** One process's CPU time (ms, all its threads; `mainMs`: its main thread's alone), its command name and command line (arguments joined by spaces), from /proc. */
export interface ProcessCpu {
  comm: string;
  cmdline: string;
  ms: number;
  mainMs: number;
}

/**
 * Every process's CPU time so far (Linux /proc/PID/task/TID/schedstat, as
 * `cpuMs`), by pid: two snapshots around a phase tell which processes (and
 * which of them on their main thread) spent its CPU. Empty where /proc is
 * missing. Processes that ended meanwhile are not in it.
 */
export function cpuByProcess(): Map<number, ProcessCpu> {
  const out = new Map<number, ProcessCpu>();
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const p of pids) {
    try {
      const comm = readFileSync(`/proc/${p}/comm`, "utf8").trim();
      let ns = 0;
      let main = 0;
      for (const tid of readdirSync(`/proc/${p}/task`)) {
        try {
          const t = Number(readFileSync(`/proc/${p}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
          ns += t;
          if (tid === p) main = t;
        } catch {
          // the thread ended meanwhile
        }
      }
      const cmdline = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").join(" ").trim();
      out.set(Number(p), { comm, cmdline, ms: ns / 1e6, mainMs: main / 1e6 });
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** CPU ms spent between two `cpuByProcess` snapshots, per pid (processes in both). */
export function cpuSpent(before: Map<number, ProcessCpu>, after: Map<number, ProcessCpu>): Map<number, ProcessCpu> {
  const out = new Map<number, ProcessCpu>();
  for (const [pid, a] of after) {
    const b = before.get(pid);
    if (!b || b.comm !== a.comm) continue;
    out.set(pid, { comm: a.comm, cmdline: a.cmdline, ms: a.ms - b.ms, mainMs: a.mainMs - b.mainMs });
  }
  return out;
}
