/**
 * Which GPU backend a llama-server uses, told by its own log: Metal builds
 * print `ggml_metal_device_init: GPU name: Apple M4 Pro` (the seed's check),
 * CUDA and Vulkan builds announce their devices the same way. A server that
 * became ready without any of these runs on the CPU.
 */
export type GpuBackend = "Metal" | "CUDA" | "Vulkan" | "CPU";

const PATTERNS: [RegExp, GpuBackend][] = [
  [/ggml_metal_|\bMetal\b|\bMTL\d?\b/, "Metal"],
  [/ggml_cuda_|\bCUDA\d*\b(?!\s*[:=]\s*0)/, "CUDA"],
  [/ggml_vulkan|\bVulkan\d*\b/, "Vulkan"],
];

/** The backend a log line reveals, or null. */
export function gpuBackendFromLogLine(line: string): GpuBackend | null {
  // "system_info: ... METAL = 0 | CUDA = 0" lists what a build lacks: not evidence of a GPU.
  if (/=\s*0\b/.test(line) && /system_info/.test(line)) return null;
  for (const [re, backend] of PATTERNS) if (re.test(line)) return backend;
  return null;
}

/** A GPU seen in the log wins over the CPU guess made at ready. */
export function mergeGpuBackend(current: string | null, seen: GpuBackend | null): string | null {
  if (seen === null) return current;
  if (current === null || current === "CPU") return seen;
  return current;
}
