/**
 * The host's memory from recorded outputs of the real commands (recordings/): macOS `sysctl`, `vm_stat`
 * and `llama-server --list-devices` on an M3 Max 36 GB, on an M2 Ultra 192 GB whose GPU limit was raised
 * with iogpu.wired_limit_mb, and on an Intel Mac without Metal or the iogpu sysctl; Linux with two CUDA
 * GPUs, and this machine for real.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { findLlamaServer } from "../supervisor/binary.ts";
import { parseListDevices, parseMeminfo, parseSysctlNumber, parseVmStat } from "./parse.ts";
import { readHostMemory, type CommandResult, type RunCommand } from "./read.ts";

const MiB = 1024 ** 2;
const rec = (name: string) => readFileSync(path.join(import.meta.dirname, "recordings", name), "utf8");
const has = (name: string) => {
  try {
    rec(name);
    return true;
  } catch {
    return false;
  }
};

/** Answers each command with its recording (what the Mac printed); a missing oid fails as sysctl does. */
function recorded(machine: string): { run: RunCommand; calls: string[] } {
  const calls: string[] = [];
  const ok = (stdout: string): CommandResult => ({ code: 0, stdout, stderr: "", error: null });
  const run: RunCommand = async (file, args) => {
    calls.push([file, ...args].join(" "));
    if (file === "/usr/sbin/sysctl") {
      const oid = args[1]!;
      if (has(`${machine}.sysctl-${oid}.txt`)) return ok(rec(`${machine}.sysctl-${oid}.txt`));
      const stderr = rec(`${machine}.sysctl-${oid}.stderr.txt`);
      return { code: 1, stdout: "", stderr, error: `${file} ${args.join(" ")}: exit 1: ${stderr.trim()}` };
    }
    if (file === "/usr/bin/vm_stat") return ok(rec(`${machine}.vm_stat.txt`));
    if (args[0] === "--list-devices") return { code: 0, stdout: rec(`${machine}.list-devices.txt`), stderr: "", error: null };
    throw new Error(`unexpected command ${file}`);
  };
  return { run, calls };
}

describe("parsers", () => {
  it("reads sysctl numbers and refuses anything else", () => {
    expect(parseSysctlNumber("38654705664\n")).toBe(38654705664);
    expect(parseSysctlNumber("0\n")).toBe(0);
    expect(parseSysctlNumber("sysctl: unknown oid 'iogpu.wired_limit_mb'")).toBeNull();
    expect(parseSysctlNumber("")).toBeNull();
  });
  it("reads vm_stat's page size and reclaimable pages", () => {
    expect(parseVmStat(rec("m3-max-36g.vm_stat.txt"))).toEqual({ pageSize: 16384, availableBytes: (63216 + 754313 + 9841) * 16384 });
    expect(parseVmStat(rec("intel-16g.vm_stat.txt"))?.pageSize).toBe(4096);
    expect(parseVmStat("Pages free: 12.")).toBeNull();
  });
  it("reads MemTotal and MemAvailable in bytes", () => {
    expect(parseMeminfo(rec("linux.meminfo.txt"))).toEqual({ totalBytes: 65773836 * 1024, availableBytes: 48112348 * 1024 });
    expect(parseMeminfo("MemFree: 1 kB\n")).toBeNull();
  });
  it("reads --list-devices after the backends' own log lines; (none) is no device", () => {
    expect(parseListDevices(rec("m3-max-36g.list-devices.txt"))).toEqual([{ name: "MTL0", description: "Apple M3 Max", totalBytes: 27648 * MiB, freeBytes: 27647 * MiB }]);
    expect(parseListDevices(rec("linux-cuda.list-devices.txt")).map((d) => [d.name, d.description, d.totalBytes / MiB])).toEqual([
      ["CUDA0", "NVIDIA GeForce RTX 4090", 24077],
      ["CUDA1", "NVIDIA GeForce RTX 3090", 24135],
    ]);
    expect(parseListDevices(rec("intel-16g.list-devices.txt"))).toEqual([]);
  });
});

describe("readHostMemory on macOS (recorded)", () => {
  it("M3 Max 36 GB: the budget is the Metal working set, below hw.memsize", async () => {
    const { run, calls } = recorded("m3-max-36g");
    const m = await readHostMemory({ platform: "darwin", llamaServerBin: "/opt/homebrew/bin/llama-server#m3", run });
    expect(m.totalBytes).toBe(36 * 1024 ** 3);
    expect(m.gpuWorkingSetBytes).toBe(27648 * MiB);
    expect(m.wiredLimitBytes).toBeNull();
    expect(m.budgetBytes).toBe(27648 * MiB);
    expect(m.basis).toBe("Metal working set of MTL0 (Apple M3 Max, 27.0 GiB) of 36.0 GiB hw.memsize");
    expect(m.availableBytes).toBe((63216 + 754313 + 9841) * 16384);
    expect(m.problems).toEqual([]);
    // argv arrays, absolute paths: nothing goes through a shell or PATH.
    expect(calls.sort()).toEqual(["/opt/homebrew/bin/llama-server#m3 --list-devices", "/usr/bin/vm_stat", "/usr/sbin/sysctl -n hw.memsize", "/usr/sbin/sysctl -n iogpu.wired_limit_mb"]);
  });

  it("M2 Ultra 192 GB with iogpu.wired_limit_mb=172032: the wired limit is the budget", async () => {
    const m = await readHostMemory({ platform: "darwin", llamaServerBin: "/opt/homebrew/bin/llama-server#m2", run: recorded("m2-ultra-192g-wired").run });
    expect(m.wiredLimitBytes).toBe(172032 * MiB);
    expect(m.budgetBytes).toBe(172032 * MiB);
    expect(m.basis).toMatch(/^iogpu\.wired_limit_mb \(168\.0 GiB\) of 192\.0 GiB hw\.memsize$/);
  });

  it("Intel Mac without Metal or the iogpu sysctl: hw.memsize, and the basis says the GPU limit is unknown", async () => {
    const m = await readHostMemory({ platform: "darwin", llamaServerBin: "/usr/local/bin/llama-server#intel", run: recorded("intel-16g").run });
    expect(m.budgetBytes).toBe(16 * 1024 ** 3);
    expect(m.gpuWorkingSetBytes).toBeNull();
    expect(m.basis).toMatch(/hw\.memsize \(16\.0 GiB\); llama-server listed no Metal device/);
    // A missing oid is an older macOS, not a problem.
    expect(m.problems).toEqual([]);
  });

  it("a command that times out is a problem named in the reading; the rest still count", async () => {
    const base = recorded("m3-max-36g").run;
    const run: RunCommand = async (file, args, t) => (file === "/usr/bin/vm_stat" ? { code: null, stdout: "", stderr: "", error: `${file}: timed out after ${t} ms` } : base(file, args, t));
    const m = await readHostMemory({ platform: "darwin", llamaServerBin: "/opt/homebrew/bin/llama-server#m3t", run });
    expect(m.availableBytes).toBeNull();
    expect(m.budgetBytes).toBe(27648 * MiB);
    expect(m.problems).toEqual(["/usr/bin/vm_stat: timed out after 5000 ms"]);
  });
});

describe("readHostMemory on Linux", () => {
  it("two CUDA GPUs: their memory summed is the budget", async () => {
    const run: RunCommand = async () => ({ code: 0, stdout: rec("linux-cuda.list-devices.txt"), stderr: "", error: null });
    const m = await readHostMemory({ platform: "linux", llamaServerBin: "/usr/local/bin/llama-server#cuda", run, readText: async () => rec("linux.meminfo.txt") });
    expect(m.totalBytes).toBe(65773836 * 1024);
    expect(m.availableBytes).toBe(48112348 * 1024);
    expect(m.budgetBytes).toBe((24077 + 24135) * MiB);
    expect(m.basis).toMatch(/^GPU memory of CUDA0 \(NVIDIA GeForce RTX 4090, 23\.5 GiB\) \+ CUDA1/);
  });

  it("this machine, for real: /proc/meminfo and the CPU llama-server (no GPU: MemTotal is the budget)", async () => {
    const bin = await findLlamaServer(process.env.LLAMA_SERVER_BIN ?? null).then((f) => f.path, () => null);
    const m = await readHostMemory({ llamaServerBin: bin });
    const meminfo = parseMeminfo(readFileSync("/proc/meminfo", "utf8"))!;
    expect(m.platform).toBe("linux");
    expect(m.totalBytes).toBe(meminfo.totalBytes);
    expect(m.availableBytes).toBeGreaterThan(0);
    if (bin) {
      expect(m.devices).toEqual([]);
      expect(m.budgetBytes).toBe(meminfo.totalBytes);
      expect(m.basis).toMatch(/^MemTotal .*listed no GPU$/);
      expect(m.problems).toEqual([]);
    }
  });
});
