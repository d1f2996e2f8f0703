import { describe, expect, it } from "vitest";
import { llamaFigures, parsePrometheusText } from "./llama-text";

const SAMPLE = `# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 120
llamacpp:prompt_tokens_cached_total 30
llamacpp:prompt_seconds_total 0.5
llamacpp:tokens_predicted_total 400
llamacpp:tokens_predicted_seconds_total 2.25
llamacpp:n_decode_total 410
llamacpp:requests_processing 1
llamacpp:requests_deferred 2
llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="0"} 5
`;

describe("llama-server's /metrics text", () => {
  it("reads samples, labelled ones by their full name", () => {
    const m = parsePrometheusText(SAMPLE);
    expect(m.get("llamacpp:prompt_tokens_total")).toBe(120);
    expect(m.get('llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="0"}')).toBe(5);
    expect(parsePrometheusText("x 1 1700000000000\nbroken\ny NaN\n")).toEqual(new Map([["x", 1]]));
  });
  it("gives the figures the app uses, and null for text without llama-server's counters", () => {
    expect(llamaFigures(SAMPLE)).toEqual({ promptTokens: 120, cachedPromptTokens: 30, generatedTokens: 400, promptSeconds: 0.5, generationSeconds: 2.25, decodeCalls: 410, requestsProcessing: 1, requestsDeferred: 2 });
    expect(llamaFigures("up 1\n")).toBeNull();
  });
});
