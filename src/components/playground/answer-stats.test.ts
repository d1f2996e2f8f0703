import { describe, expect, it } from "vitest";
import { answerStats, formatStats } from "./answer-stats";

describe("answerStats", () => {
  it("takes llama-server's generation speed when the stream carries its timings", () => {
    const s = answerStats({ sentAt: 1000, firstContentAt: 1340, lastContentAt: 2000, contentChunks: 20, timings: { predicted_n: 21, predicted_ms: 500, predicted_per_second: 42 }, loaded: false });
    expect(s).toEqual({ ttftMs: 340, tokensPerS: 42, tokens: 21, source: "server", loaded: false });
    expect(formatStats(s)).toBe("first token 340 ms · 42.0 tok/s · 21 tokens");
  });

  it("counts chunks over the time between the first and the last without timings", () => {
    const s = answerStats({ sentAt: 0, firstContentAt: 2500, lastContentAt: 3500, contentChunks: 11, timings: null, loaded: true });
    expect(s).toMatchObject({ ttftMs: 2500, tokensPerS: 10, tokens: 11, source: "browser" });
    expect(formatStats(s)).toBe("first token 2.50 s (incl. loading) · 10.0 tok/s · 11 tokens");
  });

  it("no content: no first token, no speed", () => {
    const s = answerStats({ sentAt: 0, firstContentAt: null, lastContentAt: null, contentChunks: 0, timings: null, loaded: false });
    expect(formatStats(s)).toBe("no tokens · 0 tokens");
  });
});
