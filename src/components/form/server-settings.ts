/**
 * The numeric llama-server settings a user can set: globally (settings page)
 * and per model as overrides (model form). One list, so a label or hint is
 * written once.
 */
export const SERVER_NUMBER_FIELDS = [
  { key: "gpuLayers", label: "GPU layers", hint: "-ngl; 99 = every layer on the GPU (Metal); 0 = CPU only" },
  { key: "ctxSize", label: "Context size", hint: "-c, tokens; 0 = the model's trained length" },
  { key: "threads", label: "Threads", hint: "-t; -1 = every logical CPU; unset (here and in Settings) = llama-server's own count: the host's physical cores, on Apple Silicon its performance cores" },
  { key: "batchSize", label: "Batch size", hint: "-b" },
  { key: "ubatchSize", label: "Micro-batch size", hint: "-ub" },
  { key: "parallel", label: "Parallel slots", hint: "-np" },
  { key: "readinessDeadlineMs", label: "Readiness deadline (ms)", hint: "how long a model may load before its start fails" },
  { key: "stopGraceMs", label: "Stop grace (ms)", hint: "SIGTERM (a second one after 2 s when this is longer, which llama-server obeys at once), then SIGKILL after this long" },
  { key: "idleTimeoutMs", label: "Idle unload (ms)", hint: "on-demand models stop after this long without a request" },
] as const;
