/**
 * Figures shown under each answer: time to first token and tokens per
 * second. Pure.
 *
 * - Time to first token is measured in the browser, from sending the request
 *   to the first content: what a user waits, loading an idle model included.
 * - Tokens per second is llama-server's own figure for generation
 *   (`timings.predicted_per_second` in the stream's last chunk) when the
 *   stream carries it; otherwise content chunks (one token each from
 *   llama-server) counted between the first and the last, over that time.
 */

/** llama-server's `timings` object (ms and tokens), the fields used here. */
export interface ServerTimings {
  prompt_n?: number;
  prompt_ms?: number;
  predicted_n?: number;
  predicted_ms?: number;
  predicted_per_second?: number;
}

export interface AnswerStats {
  /** ms from send to the first content; null when none came. */
  ttftMs: number | null;
  /** Generated tokens per second; null when not measurable. */
  tokensPerS: number | null;
  /** Generated tokens (server's count, else content chunks). */
  tokens: number;
  /** Where tokensPerS comes from. */
  source: "server" | "browser";
  /** The model was loaded for this answer (the wait is in ttftMs). */
  loaded: boolean;
}

export interface StreamClock {
  sentAt: number;
  firstContentAt: number | null;
  lastContentAt: number | null;
  contentChunks: number;
  timings: ServerTimings | null;
  loaded: boolean;
}

export function answerStats(c: StreamClock): AnswerStats {
  const ttftMs = c.firstContentAt === null ? null : Math.max(0, c.firstContentAt - c.sentAt);
  const t = c.timings;
  if (t && typeof t.predicted_per_second === "number" && Number.isFinite(t.predicted_per_second) && (t.predicted_n ?? 0) > 0) {
    return { ttftMs, tokensPerS: t.predicted_per_second, tokens: t.predicted_n ?? c.contentChunks, source: "server", loaded: c.loaded };
  }
  const span = c.firstContentAt !== null && c.lastContentAt !== null ? c.lastContentAt - c.firstContentAt : 0;
  // n chunks span n-1 intervals after the first one arrived.
  const tokensPerS = c.contentChunks >= 2 && span > 0 ? ((c.contentChunks - 1) * 1000) / span : null;
  return { ttftMs, tokensPerS, tokens: c.contentChunks, source: "browser", loaded: c.loaded };
}

/** "340 ms" / "2.4 s". */
export function formatMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** "first token 340 ms · 41.2 tok/s · 128 tokens" */
export function formatStats(s: AnswerStats): string {
  const parts = [s.ttftMs === null ? "no tokens" : `first token ${formatMs(s.ttftMs)}${s.loaded ? " (incl. loading)" : ""}`];
  if (s.tokensPerS !== null) parts.push(`${s.tokensPerS >= 100 ? Math.round(s.tokensPerS) : s.tokensPerS.toFixed(1)} tok/s`);
  parts.push(`${s.tokens} token${s.tokens === 1 ? "" : "s"}`);
  return parts.join(" · ");
}
