/**
 * Builds llama-server's argv from a typed spec, for the flags the installed
 * binary understands. Never a shell string: each value is its own argv item,
 * so nothing in a spec can be interpreted by a shell.
 */
import type { ServerSpec } from "../protocol.ts";
import type { LlamaServerCapabilities } from "./binary.ts";

export interface Launch {
  args: string[];
  /** Extra environment: the API key travels here, not in argv, because argv is visible to every user in `ps`. */
  env: Record<string, string>;
}

export function buildLaunch(spec: ServerSpec, modelPath: string, caps: LlamaServerCapabilities): Launch {
  const a: string[] = [
    "--model", modelPath,
    "--host", spec.bindAddress,
    "--port", String(spec.port),
    "--ctx-size", String(spec.ctxSize),
    "--n-gpu-layers", String(spec.gpuLayers),
    // None in the spec: no --threads, so llama-server counts the host's cores itself (the spec's field says how).
    ...(spec.threads !== undefined ? ["--threads", String(spec.threads)] : []),
    "--batch-size", String(spec.batchSize),
    "--ubatch-size", String(spec.ubatchSize),
    "--parallel", String(spec.parallel),
  ];

  if (caps.flashAttn === "value") a.push("--flash-attn", spec.flashAttn);
  else if (caps.flashAttn === "bare" && spec.flashAttn === "on") a.push("-fa"); // old builds: off unless the switch is given

  if (caps.loadFlags === "load-mode") {
    a.push("--load-mode", spec.loadMode === "no-mmap" ? "none" : spec.loadMode === "mlock" ? "mmap+mlock" : "mmap");
  } else if (spec.loadMode === "no-mmap") {
    a.push("--no-mmap");
  } else if (spec.loadMode === "mlock") {
    a.push("--mlock");
  }

  // The app's memory plan (src/server/services/memory/estimate.ts) estimates these settings as given;
  // --fit on (llama.cpp's default) could run smaller ones instead, so a plan would not describe what runs.
  if (caps.fit) a.push("--fit", "off");
  if (spec.cacheRamMiB !== undefined) a.push("--cache-ram", String(spec.cacheRamMiB));

  if (spec.alias !== undefined) a.push("--alias", spec.alias);
  for (const f of spec.extraFlags) {
    a.push(f.flag);
    if (f.value !== undefined) a.push(f.value);
  }
  // Every server serves /metrics: the app reads its counters (src/server/services/metrics/). Once,
  // after the model's own flags (a model that lists it already keeps its place).
  if (!spec.extraFlags.some((f) => f.flag === "--metrics")) a.push("--metrics");
  return { args: a, env: spec.apiKey !== undefined ? { LLAMA_API_KEY: spec.apiKey } : {} };
}
