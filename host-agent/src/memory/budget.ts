/**
 * The budget start plans charge llama-servers against, from what the readers found. Pure.
 *
 * macOS (unified memory): the GPU may hold only its working set. `iogpu.wired_limit_mb` (when non-zero)
 * is that limit; otherwise the Metal device's size as llama-server lists it (recommendedMaxWorkingSetSize).
 * The budget is the smaller of that and hw.memsize. Without either GPU figure (llama-server missing, no
 * Metal device), hw.memsize is the budget and the basis says so.
 * Linux: the GPUs llama-server lists (their total, summed: llama.cpp splits layers across them); without
 * GPUs, MemTotal.
 */
import type { MemoryDevice } from "../protocol.ts";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface MemoryReadings {
  platform: string;
  totalBytes: number;
  availableBytes: number | null;
  /** macOS: iogpu.wired_limit_mb in MiB, 0 or null when not set. */
  wiredLimitMiB: number | null;
  devices: MemoryDevice[];
}

export interface Budget {
  budgetBytes: number;
  gpuWorkingSetBytes: number | null;
  wiredLimitBytes: number | null;
  basis: string;
}

const gib = (b: number) => `${(b / GiB).toFixed(1)} GiB`;

export function chooseBudget(r: MemoryReadings): Budget {
  const gpus = r.devices.filter((d) => d.totalBytes > 0);
  if (r.platform === "darwin") {
    const wiredLimitBytes = r.wiredLimitMiB && r.wiredLimitMiB > 0 ? r.wiredLimitMiB * MiB : null;
    const metal = gpus.find((d) => d.name.startsWith("MTL")) ?? gpus[0] ?? null;
    const gpuWorkingSetBytes = wiredLimitBytes ?? metal?.totalBytes ?? null;
    if (gpuWorkingSetBytes === null) {
      return { budgetBytes: r.totalBytes, gpuWorkingSetBytes: null, wiredLimitBytes: null, basis: `hw.memsize (${gib(r.totalBytes)}); llama-server listed no Metal device, so the GPU's working-set limit is unknown` };
    }
    const basis = wiredLimitBytes !== null ? `iogpu.wired_limit_mb (${gib(wiredLimitBytes)})` : `Metal working set of ${metal!.name} (${metal!.description}, ${gib(metal!.totalBytes)})`;
    const budgetBytes = Math.min(r.totalBytes, gpuWorkingSetBytes);
    return { budgetBytes, gpuWorkingSetBytes, wiredLimitBytes, basis: budgetBytes < gpuWorkingSetBytes ? `hw.memsize (${gib(r.totalBytes)}), below ${basis}` : `${basis} of ${gib(r.totalBytes)} hw.memsize` };
  }
  if (gpus.length > 0) {
    const sum = gpus.reduce((s, d) => s + d.totalBytes, 0);
    return { budgetBytes: sum, gpuWorkingSetBytes: null, wiredLimitBytes: null, basis: `GPU memory of ${gpus.map((d) => `${d.name} (${d.description}, ${gib(d.totalBytes)})`).join(" + ")}` };
  }
  return { budgetBytes: r.totalBytes, gpuWorkingSetBytes: null, wiredLimitBytes: null, basis: `MemTotal (${gib(r.totalBytes)}); llama-server listed no GPU` };
}
