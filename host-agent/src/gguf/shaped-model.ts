/**
 * Models with realistic shapes (vocabularies of tens of thousands, widths in the thousands, grouped-query
 * and sliding-window attention) written as sparse GGUF files: hundreds of MiB that llama-server loads, in
 * a few KiB of disk. Their weights are all zeros, so their text is meaningless; they exist to compare the
 * memory estimator with llama.cpp's own breakdown on shapes like the models people run.
 *
 * Architectures: `llama` (GQA when kvHeads < heads), `qwen2` (GQA, q/k/v biases, untied output) and
 * `gemma2` / `gemma3` (sliding-window attention on every other layer / five layers in six, q/k norms on
 * gemma3), each with the tensors and keys llama.cpp's loader for that architecture requires.
 */
import { llamaTokenizerMetadata, tinyVocabulary } from "./tiny-model.ts";
import { writeGgufSparse, writeGgufSparseSplit, type GgufSparseTensor, type GgufWriteValue } from "./writer.ts";
import { GGML_TYPES_BY_NAME } from "../shared/ggml-types.ts";

export type ShapedArchitecture = "llama" | "qwen2" | "gemma2" | "gemma3";

export interface ShapedModelOptions {
  architecture: ShapedArchitecture;
  embedding: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** Per head, K and V alike; default embedding / heads. */
  headSize?: number;
  feedForward: number;
  vocab: number;
  contextLength: number;
  /** gemma2 / gemma3: the sliding window (tokens). */
  slidingWindow?: number;
  /** ggml type name of the 2-D weights (norms and biases stay f32): f32, f16, q8_0, q4_0, ... */
  weightType?: string;
  name?: string;
}

const F32 = 0;

function typeCode(name: string): number {
  const t = GGML_TYPES_BY_NAME.get(name);
  if (!t) throw new Error(`unknown ggml type ${name}`);
  return t.code;
}

/** The byte-level vocabulary of the tiny model, padded with word tokens up to `size`. */
function vocabulary(size: number): { tokens: string[]; scores: number[]; types: number[] } {
  const base = tinyVocabulary();
  if (size < base.tokens.length) throw new Error(`a vocabulary needs at least ${base.tokens.length} tokens, not ${size}`);
  for (let i = base.tokens.length; i < size; i++) {
    base.tokens.push(`\u2581w${i}`);
    base.types.push(1);
  }
  return { tokens: base.tokens, scores: base.tokens.map(() => 0), types: base.types };
}

export function shapedModelContent(o: ShapedModelOptions): { metadata: Record<string, GgufWriteValue>; tensors: GgufSparseTensor[] } {
  const arch = o.architecture;
  const e = o.embedding;
  const hd = o.headSize ?? e / o.heads;
  const q = hd * o.heads;
  const kv = hd * o.kvHeads;
  const w = typeCode(o.weightType ?? "f16");
  const gemma = arch === "gemma2" || arch === "gemma3";
  const vocab = vocabulary(o.vocab);

  const tensors: GgufSparseTensor[] = [
    { name: "token_embd.weight", dims: [e, o.vocab], type: w },
    { name: "output_norm.weight", dims: [e], type: F32 },
  ];
  if (!gemma) tensors.push({ name: "output.weight", dims: [e, o.vocab], type: w });
  for (let i = 0; i < o.layers; i++) {
    const b = `blk.${i}`;
    tensors.push(
      { name: `${b}.attn_norm.weight`, dims: [e], type: F32 },
      { name: `${b}.attn_q.weight`, dims: [e, q], type: w },
      { name: `${b}.attn_k.weight`, dims: [e, kv], type: w },
      { name: `${b}.attn_v.weight`, dims: [e, kv], type: w },
      { name: `${b}.attn_output.weight`, dims: [q, e], type: w },
      { name: `${b}.ffn_norm.weight`, dims: [e], type: F32 },
      { name: `${b}.ffn_gate.weight`, dims: [e, o.feedForward], type: w },
      { name: `${b}.ffn_up.weight`, dims: [e, o.feedForward], type: w },
      { name: `${b}.ffn_down.weight`, dims: [o.feedForward, e], type: w },
    );
    if (arch === "qwen2") {
      tensors.push(
        { name: `${b}.attn_q.bias`, dims: [q], type: F32 },
        { name: `${b}.attn_k.bias`, dims: [kv], type: F32 },
        { name: `${b}.attn_v.bias`, dims: [kv], type: F32 },
      );
    }
    if (gemma) {
      tensors.push(
        { name: `${b}.post_attention_norm.weight`, dims: [e], type: F32 },
        { name: `${b}.post_ffw_norm.weight`, dims: [e], type: F32 },
      );
    }
    if (arch === "gemma3") {
      tensors.push(
        { name: `${b}.attn_k_norm.weight`, dims: [hd], type: F32 },
        { name: `${b}.attn_q_norm.weight`, dims: [hd], type: F32 },
      );
    }
  }

  const metadata: Record<string, GgufWriteValue> = {
    "general.architecture": { type: "string", value: arch },
    "general.name": { type: "string", value: o.name ?? `synapse-shaped-${arch}` },
    [`${arch}.context_length`]: { type: "u32", value: o.contextLength },
    [`${arch}.embedding_length`]: { type: "u32", value: e },
    [`${arch}.block_count`]: { type: "u32", value: o.layers },
    [`${arch}.feed_forward_length`]: { type: "u32", value: o.feedForward },
    [`${arch}.attention.head_count`]: { type: "u32", value: o.heads },
    [`${arch}.attention.head_count_kv`]: { type: "u32", value: o.kvHeads },
    [`${arch}.attention.key_length`]: { type: "u32", value: hd },
    [`${arch}.attention.value_length`]: { type: "u32", value: hd },
    [`${arch}.attention.layer_norm_rms_epsilon`]: { type: "f32", value: 1e-6 },
    [`${arch}.rope.dimension_count`]: { type: "u32", value: hd },
    ...llamaTokenizerMetadata(vocab),
  };
  if (gemma) {
    if (o.slidingWindow === undefined) throw new Error(`${arch} needs a sliding window`);
    metadata[`${arch}.attention.sliding_window`] = { type: "u32", value: o.slidingWindow };
  }
  return { metadata, tensors };
}

export async function writeShapedModel(filePath: string, opts: ShapedModelOptions): Promise<void> {
  const { metadata, tensors } = shapedModelContent(opts);
  await writeGgufSparse(filePath, metadata, tensors);
}

/** A shaped model as a split set of `count` parts; returns their paths. */
export async function writeShapedModelSplit(prefix: string, count: number, opts: ShapedModelOptions): Promise<string[]> {
  const { metadata, tensors } = shapedModelContent(opts);
  return writeGgufSparseSplit(prefix, metadata, tensors, count);
}
