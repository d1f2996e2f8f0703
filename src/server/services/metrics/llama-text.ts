/**
 * llama-server's /metrics answer (Prometheus text format 0.0.4) as a map
 * from sample name to value. llama-server writes one unlabelled sample per
 * line (`llamacpp:tokens_predicted_total 42`); a labelled sample keeps its
 * labels in the key. Comments, blank and unreadable lines are skipped.
 */
export function parsePrometheusText(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    // "name value [timestamp]" or "name{labels} value [timestamp]".
    const close = line.indexOf("}");
    const nameEnd = close !== -1 ? close + 1 : line.search(/\s/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    const value = Number(line.slice(nameEnd).trim().split(/\s+/)[0]);
    if (name && !Number.isNaN(value)) out.set(name, value);
  }
  return out;
}

/** llama-server's counters and gauges that the app uses (names without the `llamacpp:` prefix). */
export interface LlamaFigures {
  /** Prompt tokens processed, cached ones excluded (counter). */
  promptTokens: number;
  /** Prompt tokens reused from the cache (counter; absent on older builds: 0). */
  cachedPromptTokens: number;
  /** Tokens generated (counter). */
  generatedTokens: number;
  promptSeconds: number;
  generationSeconds: number;
  decodeCalls: number;
  /** Requests in its slots now (gauge). */
  requestsProcessing: number;
  /** Requests waiting for a slot (gauge). */
  requestsDeferred: number;
}

/** The figures in a /metrics answer; null when it lacks the token counters (not llama-server's). */
export function llamaFigures(text: string): LlamaFigures | null {
  const m = parsePrometheusText(text);
  const get = (n: string) => m.get(`llamacpp:${n}`);
  const prompt = get("prompt_tokens_total");
  const predicted = get("tokens_predicted_total");
  if (prompt === undefined || predicted === undefined) return null;
  return {
    promptTokens: prompt,
    cachedPromptTokens: get("prompt_tokens_cached_total") ?? 0,
    generatedTokens: predicted,
    promptSeconds: get("prompt_seconds_total") ?? 0,
    generationSeconds: get("tokens_predicted_seconds_total") ?? 0,
    decodeCalls: get("n_decode_total") ?? 0,
    requestsProcessing: get("requests_processing") ?? 0,
    requestsDeferred: get("requests_deferred") ?? 0,
  };
}
