/**
 * A model's shape: the facts from its GGUF header that its memory use follows (tensor bytes by type,
 * layers, heads and KV heads per layer, head sizes, sliding windows, trained context, shards). The agent
 * reads it at discovery; the registry stores it, so estimates never need the file (the app may run in a
 * container, and the files live on the hosts). Version 1; a later version adds fields, never renames.
 */
import { z } from "zod";

/** Longest per-layer list kept (no model has more layers; bounds a stored shape to a few KiB). */
export const MAX_SHAPE_LAYERS = 1024;

const count = z.number().int().min(0).max(2 ** 40);
const bytes = z.number().min(0).max(2 ** 53);

export const modelShapeSchema = z.object({
  version: z.literal(1),
  /** `general.architecture`, e.g. llama, qwen2, gemma3. */
  architecture: z.string().min(1).max(64),
  /** Trained context (`{arch}.context_length`): llama-server's context when `--ctx-size` is 0. */
  contextLength: count,
  /** Width of the residual stream (`{arch}.embedding_length`). */
  embedding: count,
  /** Vocabulary size (tokens), which sizes the logits. */
  vocab: count,
  /** Transformer blocks (`{arch}.block_count`). */
  layers: z.number().int().min(1).max(MAX_SHAPE_LAYERS),
  /** Query heads per layer. */
  heads: z.array(count).max(MAX_SHAPE_LAYERS),
  /** KV heads per layer (fewer than `heads` with grouped-query attention; 0: the layer has no KV cache). */
  kvHeads: z.array(count).max(MAX_SHAPE_LAYERS),
  /** Elements per head of K and of V (`{arch}.attention.key_length` / `value_length`). */
  headSizeK: count,
  headSizeV: count,
  /** Feed-forward width per layer (per expert for a mixture of experts). */
  feedForward: z.array(count).max(MAX_SHAPE_LAYERS),
  /** Experts per layer and experts used per token (0 for a dense model). */
  experts: count,
  expertsUsed: count,
  /** Sliding-window attention: the window in tokens (0 = none) and which layers use it. */
  slidingWindow: count,
  swaLayers: z.array(z.boolean()).max(MAX_SHAPE_LAYERS),
  /** q/k/v biases present (adds nodes to the compute graph, not memory worth counting). */
  attentionBias: z.boolean(),
  /** Bytes of tensor data by ggml type name (f16, q8_0, q4_k, ...), over every shard. */
  tensorBytesByType: z.record(z.string().max(16), bytes),
  /** Bytes of all tensor data (the sum of the above): what llama.cpp maps or loads. */
  weightsBytes: bytes,
  /** The files holding the tensors, in order (one, or every part of a split set). */
  shards: z.array(z.object({ file: z.string().max(1024), tensorBytes: bytes })).min(1).max(512),
});
export type ModelShape = z.infer<typeof modelShapeSchema>;
