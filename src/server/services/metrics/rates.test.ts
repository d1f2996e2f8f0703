import { describe, expect, it } from "vitest";
import type { LlamaFigures } from "./llama-text";
import { ratesBetween } from "./rates";
import type { ServerReading } from "./server-reader";

const figures = (generatedTokens: number, promptTokens: number): LlamaFigures => ({ generatedTokens, promptTokens, cachedPromptTokens: 0, promptSeconds: 0, generationSeconds: 0, decodeCalls: 0, requestsProcessing: 0, requestsDeferred: 0 });
/** `processStart`: llama-server's Process-Start-Time-Unix header, microseconds on a monotonic clock (62997431487 after 17.5 h up). */
const reading = (at: number, gen: number, prompt: number, processStart: number | null = 62_997_431_487): ServerReading => ({ at, processStart, figures: figures(gen, prompt), sleeping: false, slots: null });

describe("rates from llama-server's counters", () => {
  it("divides the counters' growth by the time between reads", () => {
    expect(ratesBetween(reading(1_005_000, 100, 40), reading(1_010_000, 600, 90))).toEqual({ generatedPerS: 100, promptPerS: 10 });
  });
  it("has none for a first read", () => {
    expect(ratesBetween(null, reading(1_005_000, 1, 1))).toBeNull();
  });
  it("treats a restart as a reset: the new count over the time between the reads, whatever the start header's number", () => {
    // The server restarted between the reads (a new start header): 60 tokens in the 5 s. The header is not a time:
    // read as Unix seconds, this one is in the year 3966, and the rate was 60 / 0.001 s = 60000 (a trial saw 2.67 M).
    expect(ratesBetween(reading(1_005_000, 500, 50), reading(1_010_000, 60, 20, 63_001_512_004))).toEqual({ generatedPerS: 12, promptPerS: 4 });
    // The header alone says restart, though the counters grew past their old values.
    expect(ratesBetween(reading(1_005_000, 50, 5), reading(1_010_000, 600, 60, 63_001_512_004))).toEqual({ generatedPerS: 120, promptPerS: 12 });
    // Without a start time: a counter that went back is a reset over the read interval.
    expect(ratesBetween(reading(1_005_000, 500, 50, null), reading(1_010_000, 50, 5, null))).toEqual({ generatedPerS: 10, promptPerS: 1 });
  });
  it("adds the tokens the working slots generated so far, which the counter gets only when a request ends", () => {
    const withSlots = (at: number, gen: number, generating: number): ServerReading => ({ ...reading(at, gen, 10), slots: { total: 1, busy: generating > 0 ? 1 : 0, generating } });
    // A long generation: the counter stays at 100 while the slot's request goes from 200 to 700 tokens.
    expect(ratesBetween(withSlots(1_005_000, 100, 200), withSlots(1_010_000, 100, 700))!.generatedPerS).toBe(100);
    // It ended between the reads at 900 tokens: the counter has them, the slot is idle.
    expect(ratesBetween(withSlots(1_005_000, 100, 700), withSlots(1_010_000, 1000, 0))!.generatedPerS).toBe(40);
    // A reading without /slots (asleep, or /slots off): the counters alone.
    expect(ratesBetween(reading(1_005_000, 100, 10), withSlots(1_010_000, 100, 700))!.generatedPerS).toBe(0);
    // Never below 0 (a request ended between one reading's /metrics and /slots reads: missed by it, counted next).
    expect(ratesBetween(withSlots(1_005_000, 100, 700), withSlots(1_010_000, 100, 0))!.generatedPerS).toBe(0);
  });
});
