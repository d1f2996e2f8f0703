/**
 * Rates from two readings of llama-server's counters. Its own tokens/s
 * gauges are averaged over the time between two /metrics reads and reset
 * by each read (so a second reader would halve them): the app computes
 * rates from the counters instead.
 *
 * A counter that went back, or a new process start header, is a restart:
 * the counters began again at 0, so the rate is the new value over the time
 * since the previous read, as Prometheus's rate() treats a reset (a lower
 * bound: the process ran for part of it). The header is not read as a time
 * (ServerReading.processStart: it is microseconds on a monotonic clock);
 * read as Unix seconds it put the start after the read, the time since it
 * at its 1 ms floor, and the rate 1000 times too high or more (a trial saw
 * 2,673,000 tokens/s after a restart).
 *
 * Generated tokens: llama-server adds a request's tokens to
 * `tokens_predicted_total` only when the request ends, so a generation of a
 * minute read 0 tok/s for a minute, then a burst. When both readings have the
 * working slots' tokens so far (/slots, ServerReading.slots.generating), they
 * are added to the counter on each side: the rate then follows the tokens as
 * they are generated. A request that ends between the /metrics and /slots
 * reads of one reading is missed by it and counted by the next (a dip, then
 * as much more); the rate is never below 0.
 */
import type { ServerReading } from "./server-reader";

export interface ServerRates {
  /** Generated tokens per second over the interval. */
  generatedPerS: number;
  /** Prompt tokens processed per second (cached ones excluded). */
  promptPerS: number;
}

export function ratesBetween(prev: ServerReading | null, cur: ServerReading): ServerRates | null {
  if (!prev || cur.at <= prev.at) return null;
  const restarted =
    (cur.processStart !== null && prev.processStart !== null && cur.processStart !== prev.processStart) ||
    cur.figures.generatedTokens < prev.figures.generatedTokens ||
    cur.figures.promptTokens < prev.figures.promptTokens;
  if (restarted) {
    const seconds = (cur.at - prev.at) / 1000;
    return { generatedPerS: (cur.figures.generatedTokens + (cur.slots?.generating ?? 0)) / seconds, promptPerS: cur.figures.promptTokens / seconds };
  }
  const seconds = (cur.at - prev.at) / 1000;
  const live = prev.slots !== null && cur.slots !== null;
  const generated = (r: ServerReading) => r.figures.generatedTokens + (live ? r.slots!.generating : 0);
  return {
    generatedPerS: Math.max(0, generated(cur) - generated(prev)) / seconds,
    promptPerS: (cur.figures.promptTokens - prev.figures.promptTokens) / seconds,
  };
}
