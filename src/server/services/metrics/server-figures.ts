/**
 * Each model's llama-server figures as Prometheus metrics, labelled
 * {model, host}, set from the collector's last reads when figures are read:
 *
 *   synapse_server_up                            1: its last read answered; 0: it failed (ready servers only)
 *   synapse_server_ready                         1 while its state is ready (every registered model)
 *   synapse_server_prompt_tokens_total           llamacpp:prompt_tokens_total (cached tokens excluded)
 *   synapse_server_prompt_cached_tokens_total    llamacpp:prompt_tokens_cached_total
 *   synapse_server_generated_tokens_total        llamacpp:tokens_predicted_total
 *   synapse_server_prompt_seconds_total          llamacpp:prompt_seconds_total
 *   synapse_server_generation_seconds_total      llamacpp:tokens_predicted_seconds_total
 *   synapse_server_decode_calls_total            llamacpp:n_decode_total
 *   synapse_server_requests_processing           llamacpp:requests_processing
 *   synapse_server_requests_deferred             llamacpp:requests_deferred
 *   synapse_server_slots / _slots_busy           from /slots (absent while it sleeps)
 *   synapse_server_sleeping                      /props is_sleeping
 *   synapse_server_generated_tokens_per_second   rate over the last read interval
 *   synapse_server_prompt_tokens_per_second      ditto (cached excluded)
 *   synapse_server_resident_memory_bytes         its process's RSS, where known
 *   synapse_server_load_progress_ratio           0..1 while it loads, where known
 *
 * The counters are llama-server's own values: a server's restart starts
 * them again at 0, a reset that Prometheus's rate() and increase() handle.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import type { ServerReading } from "./server-reader";
import type { ServerRates } from "./rates";
import type { LoadProgress } from "./load-progress";

/** What the collector knows of one model now. */
export interface ServerSample {
  modelId: string;
  model: string;
  host: string;
  state: string;
  /** The last successful read while ready; null when none (or it is not ready). */
  reading: ServerReading | null;
  /** The last read failed (ready servers only). */
  error: string | null;
  rates: ServerRates | null;
  memoryBytes: number | null;
  progress: LoadProgress | null;
}

type Labels = { model: string; host: string };
const lab = (s: ServerSample): Labels => ({ model: s.model, host: s.host });

export function registerServerFigures(registry: Registry, samples: () => Iterable<ServerSample>): void {
  const registers = [registry];
  const gauge = (name: string, help: string, value: (s: ServerSample) => number | null | undefined) =>
    new Gauge({
      name,
      help,
      labelNames: ["model", "host"] as const,
      registers,
      collect() {
        this.reset();
        for (const s of samples()) {
          const v = value(s);
          if (v !== null && v !== undefined) this.set(lab(s), v);
        }
      },
    });
  const counter = (name: string, help: string, value: (r: ServerReading) => number) =>
    new Counter({
      name,
      help,
      labelNames: ["model", "host"] as const,
      registers,
      collect() {
        this.reset();
        for (const s of samples()) if (s.reading) this.inc(lab(s), value(s.reading));
      },
    });

  gauge("synapse_server_up", "1 when the model server's last /metrics read answered, 0 when it failed (ready servers only)", (s) => (s.state === "ready" ? (s.error === null && s.reading ? 1 : 0) : null));
  gauge("synapse_server_ready", "1 while the model's server is ready, else 0", (s) => (s.state === "ready" ? 1 : 0));
  counter("synapse_server_prompt_tokens_total", "Prompt tokens the server processed, cached ones excluded (llamacpp:prompt_tokens_total)", (r) => r.figures.promptTokens);
  counter("synapse_server_prompt_cached_tokens_total", "Prompt tokens the server reused from its cache (llamacpp:prompt_tokens_cached_total)", (r) => r.figures.cachedPromptTokens);
  counter("synapse_server_generated_tokens_total", "Tokens the server generated (llamacpp:tokens_predicted_total)", (r) => r.figures.generatedTokens);
  counter("synapse_server_prompt_seconds_total", "Time the server spent processing prompts (llamacpp:prompt_seconds_total)", (r) => r.figures.promptSeconds);
  counter("synapse_server_generation_seconds_total", "Time the server spent generating (llamacpp:tokens_predicted_seconds_total)", (r) => r.figures.generationSeconds);
  counter("synapse_server_decode_calls_total", "llama_decode() calls (llamacpp:n_decode_total)", (r) => r.figures.decodeCalls);
  gauge("synapse_server_requests_processing", "Requests in the server's slots (llamacpp:requests_processing)", (s) => s.reading?.figures.requestsProcessing);
  gauge("synapse_server_requests_deferred", "Requests waiting inside the server for a slot (llamacpp:requests_deferred)", (s) => s.reading?.figures.requestsDeferred);
  gauge("synapse_server_slots", "The server's parallel slots (/slots; absent while it sleeps)", (s) => s.reading?.slots?.total);
  gauge("synapse_server_slots_busy", "Slots working on a request (/slots is_processing)", (s) => s.reading?.slots?.busy);
  gauge("synapse_server_sleeping", "1 while llama-server has put itself to sleep (/props is_sleeping)", (s) => (s.reading ? (s.reading.sleeping ? 1 : 0) : null));
  gauge("synapse_server_generated_tokens_per_second", "Generated tokens per second over the last read interval", (s) => s.rates?.generatedPerS);
  gauge("synapse_server_prompt_tokens_per_second", "Prompt tokens processed per second over the last read interval (cached excluded)", (s) => s.rates?.promptPerS);
  gauge("synapse_server_resident_memory_bytes", "Resident memory of the model's llama-server process", (s) => s.memoryBytes);
  gauge("synapse_server_load_progress_ratio", "How far a loading model is (0 to 1), from its log or its last load's duration", (s) => s.progress?.fraction);
}
