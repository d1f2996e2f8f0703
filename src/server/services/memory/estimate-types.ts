/**
 * Shapes shared by the memory estimator (issue 16, "Know before loading") and its users: host budgets,
 * start plans and eviction. Every size is in bytes. The estimator fills them from a model's stored GGUF
 * summary (no file is re-read) and the settings its llama-server will run with.
 */

/** One component of what a running llama-server holds, as llama.cpp's own breakdown names it. */
export interface MemoryEstimate {
  /** Model weights as loaded (all shards; with mmap, what is mapped). */
  weightsBytes: number;
  /** KV cache over all layers and slots (`--ctx-size` divided among `--parallel` slots). */
  kvCacheBytes: number;
  /** Compute buffer (batch/micro-batch sizes, flash attention). */
  computeBytes: number;
  /** llama-server's host prompt cache (`--cache-ram`), which its breakdown does not show. */
  promptCacheBytes: number;
  /** Sum of the above. Plans charge it less the prompt cache, which fills only with use (memory/plan.ts chargedBytes). */
  totalBytes: number;
  /** What the estimate assumed that a reader should know (e.g. "--fit off passed"). */
  notes: string[];
}

/** Why a model has no estimate (no GGUF summary stored yet, unknown architecture, ...): a sentence to show. */
export interface NoEstimate {
  unavailable: string;
}
