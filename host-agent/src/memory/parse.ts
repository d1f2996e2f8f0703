/**
 * Readers of the commands and files that tell a host's memory. Pure: text in, bytes out (null when the
 * text does not say). Recorded outputs of each command are in recordings/ and tested in parse.test.ts.
 */
import type { MemoryDevice } from "../protocol.ts";

const MiB = 1024 * 1024;

/** `sysctl -n hw.memsize` / `sysctl -n iogpu.wired_limit_mb`: one non-negative integer, else null. */
export function parseSysctlNumber(text: string): number | null {
  const m = /^\s*(\d{1,20})\s*$/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * `vm_stat` (macOS): what can be had without swapping, as Activity Monitor counts it roughly: free,
 * inactive (reclaimable) and speculative pages, times the page size from its first line. Null when the
 * page size or the free count is missing.
 */
export function parseVmStat(text: string): { pageSize: number; availableBytes: number } | null {
  const size = /page size of (\d+) bytes/.exec(text);
  if (!size) return null;
  const pageSize = Number(size[1]);
  const pages = (label: string): number | null => {
    const m = new RegExp(`^${label}:\\s+(\\d+)\\.?\\s*$`, "m").exec(text);
    return m ? Number(m[1]) : null;
  };
  const free = pages("Pages free");
  if (free === null) return null;
  const reclaimable = (pages("Pages inactive") ?? 0) + (pages("Pages speculative") ?? 0);
  return { pageSize, availableBytes: (free + reclaimable) * pageSize };
}

/** /proc/meminfo (Linux): MemTotal and MemAvailable in bytes (the file says kB, meaning KiB). */
export function parseMeminfo(text: string): { totalBytes: number; availableBytes: number | null } | null {
  const kib = (key: string): number | null => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s*kB\\s*$`, "m").exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const totalBytes = kib("MemTotal");
  if (totalBytes === null) return null;
  return { totalBytes, availableBytes: kib("MemAvailable") };
}

/**
 * `llama-server --list-devices`: the lines after "Available devices:", each
 * `  NAME: DESCRIPTION (TOTAL MiB, FREE MiB free)` (llama.cpp's common_print_available_devices; Metal
 * reports the device's recommendedMaxWorkingSetSize as its total). "(none)" and backend log lines give
 * nothing. At most 64 devices.
 */
export function parseListDevices(text: string): MemoryDevice[] {
  const start = text.indexOf("Available devices:");
  if (start < 0) return [];
  const devices: MemoryDevice[] = [];
  for (const line of text.slice(start).split("\n").slice(1)) {
    const m = /^\s+([^:\s]{1,64}):\s+(.{0,256}?)\s+\((\d+) MiB, (\d+) MiB free\)\s*$/.exec(line);
    if (!m) continue;
    devices.push({ name: m[1]!, description: m[2]!, totalBytes: Number(m[3]) * MiB, freeBytes: Number(m[4]) * MiB });
    if (devices.length >= 64) break;
  }
  return devices;
}
