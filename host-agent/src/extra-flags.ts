/**
 * The extra llama-server flags a spec may carry, and the kind of value each
 * takes. Plain data with no imports, so the dashboard's form can use the same
 * list without bringing zod and the protocol into the browser bundle.
 */
export const EXTRA_FLAGS = {
  "--metrics": "none",
  "--cont-batching": "none",
  "--no-cont-batching": "none",
  "--no-webui": "none",
  "--jinja": "none",
  "--embeddings": "none",
  // /v1/embeddings refuses pooling "none" (a model's GGUF may name none): mean, cls, last, rank.
  "--pooling": "word",
  "--reranking": "none",
  "--slots": "none",
  "--seed": "integer",
  "--temp": "number",
  "--top-k": "integer",
  "--top-p": "number",
  "--n-predict": "integer",
  "--rope-freq-base": "number",
  "--rope-freq-scale": "number",
  "--cache-type-k": "cache-type",
  "--cache-type-v": "cache-type",
  "--sleep-idle-seconds": "integer",
  "--timeout": "integer",
  "--threads-http": "integer",
  "--chat-template": "word",
} as const satisfies Record<string, "none" | "integer" | "number" | "cache-type" | "word">;
export type ExtraFlagName = keyof typeof EXTRA_FLAGS;
