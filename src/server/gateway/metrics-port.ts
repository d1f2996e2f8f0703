/**
 * What the gateway tells about its requests, and nothing more. The app's
 * metrics (src/server/services/metrics/gateway-figures.ts, prom-client)
 * implement it; the gateway reaches it through the runtime on globalThis
 * (front.ts), so its bundle holds no metrics library.
 */

/** One request the gateway answered (or refused), when it ended. */
export interface GatewayRequestRecord {
  /** Registry name of the model it went to; "" when the gateway answered before knowing one (401, 404, 415, …). */
  model: string;
  /** The model's host name; "" as for `model`. */
  host: string;
  /** Who called: a gateway API key's name, "admin" (token or session), "open" (loopback without a token), "" (refused before knowing). */
  key: string;
  /** HTTP status the client got (499: it went away before the answer ended). */
  status: number;
  /** Seconds from the request's arrival to the first byte of the model's answer (null: none came). */
  firstByteS: number | null;
  /** Seconds from arrival to the end of the answer. */
  durationS: number;
  /** Tokens, from llama-server's `timings` (or OpenAI `usage`) at the end of a successful answer; null when it said none. */
  tokens: AnswerTokens | null;
}

/** Token counts of one answer. `prompt` counts every prompt token, `cachedPrompt` those of them reused from llama-server's cache. */
export interface AnswerTokens {
  prompt: number;
  cachedPrompt: number;
  completion: number;
}

/** Requests running and waiting at one model. */
export interface ModelQueue {
  modelId: string;
  model: string;
  host: string;
  running: number;
  queued: number;
}

export interface GatewayMetrics {
  /** Called once per request, at its end. Must not throw (the figures are best effort). */
  record(r: GatewayRequestRecord): void;
  /**
   * The gateway's queues, read when figures are read. A later call replaces
   * the source (a new gateway); the returned function removes this source if
   * it is still the current one (the gateway's close).
   */
  setQueueSource(source: () => ModelQueue[]): () => void;
}
