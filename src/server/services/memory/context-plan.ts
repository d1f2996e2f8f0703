/**
 * llama.cpp's context arithmetic (llama_context's constructor, llama_kv_cache_iswa): how `--ctx-size`,
 * `--parallel`, `--batch-size` and `--ubatch-size` become KV cache cells and the micro-batch its compute
 * buffer is reserved for.
 */

/** Round `n` up to a multiple of `to` (GGML_PAD). */
export const pad = (n: number, to: number): number => Math.ceil(n / to) * to;

export interface ContextPlan {
  /** Total context after padding (what llama-server logs as n_ctx). */
  nCtx: number;
  /** Cells per slot (n_ctx_seq): the longest prompt + answer one request can have. */
  nCtxSeq: number;
  /** KV streams: one per slot (llama-server's default without --kv-unified), or one shared. */
  streams: number;
  /** Cells per stream of the sliding-window layers' cache (n_ctx_seq when there are none). */
  nCtxSwa: number;
  /** Logical and physical batch after llama.cpp's caps. */
  nBatch: number;
  nUbatch: number;
  /** Tokens of the micro-batch the compute buffer is reserved for. */
  reserveTokens: number;
}

export interface ContextInput {
  /** --ctx-size; 0 means the model's trained context. */
  ctxSize: number;
  parallel: number;
  batchSize: number;
  ubatchSize: number;
  /** --kv-unified: one KV stream shared by every slot. */
  kvUnified: boolean;
  trainedContext: number;
  /** Sliding window (tokens) of the model's SWA layers; 0 when it has none. */
  slidingWindow: number;
}

export function planContext(c: ContextInput): ContextPlan {
  const seqs = Math.max(1, c.parallel);
  let nCtx = pad(c.ctxSize === 0 ? c.trainedContext : c.ctxSize, 256);
  let nCtxSeq = nCtx;
  if (!c.kvUnified) {
    // Each slot gets its own stream of n_ctx / n_seq cells, padded; the total follows the padded share.
    nCtxSeq = pad(Math.floor(nCtx / seqs), 256);
    nCtx = nCtxSeq * seqs;
  }
  const streams = c.kvUnified ? 1 : seqs;
  const nBatch = Math.min(nCtx, c.batchSize); // causal attention: a batch never exceeds the context
  const nUbatch = Math.min(nBatch, c.ubatchSize === 0 ? c.batchSize : c.ubatchSize);
  // The SWA cache keeps the window (per stream; the whole window per slot when unified) plus a micro-batch.
  const nCtxSwa = c.slidingWindow > 0 ? pad(Math.min(nCtxSeq, c.slidingWindow * (c.kvUnified ? seqs : 1) + nUbatch), 256) : nCtxSeq;
  return { nCtx, nCtxSeq, streams, nCtxSwa, nBatch, nUbatch, reserveTokens: Math.min(nCtx, nUbatch) };
}
