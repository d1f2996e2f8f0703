/**
 * The tiny test model: a real llama-architecture GGUF that llama-server loads
 * in tens of milliseconds, so tests and benchmarks run a real server without
 * downloading anything. Weights are random (seeded), so its text is noise.
 */
import { writeGguf, writeGgufSplit, type GgufWriteTensor, type GgufWriteValue } from "./writer.ts";

export interface TinyModelOptions {
  name?: string;
  embedding?: number;
  layers?: number;
  heads?: number;
  feedForward?: number;
  contextLength?: number;
  seed?: number;
}

export const TINY_MODEL_DEFAULTS = { name: "synapse-tiny", embedding: 64, layers: 2, heads: 4, feedForward: 128, contextLength: 256, seed: 42 } as const;

/** `<unk>`, `<s>`, `</s>`, one token per byte, and `▁` (the SentencePiece space). */
export function tinyVocabulary(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3]; // unknown, control, control
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6); // byte
  }
  tokens.push("\u2581");
  types.push(1); // normal
  return { tokens, scores: tokens.map(() => 0), types };
}

/** mulberry32: a tiny deterministic PRNG, so the same seed gives the same file. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The tiny model's metadata and tensors, to write as one file or as a split set. */
/** A llama (SentencePiece-style) tokenizer's GGUF metadata for `vocab`: unknown 0, BOS 1 (added), EOS 2. */
export function llamaTokenizerMetadata(vocab: { tokens: string[]; scores: number[]; types: number[] }): Record<string, GgufWriteValue> {
  return {
    "tokenizer.ggml.model": { type: "string", value: "llama" },
    "tokenizer.ggml.tokens": { type: "array", itemType: "string", value: vocab.tokens },
    "tokenizer.ggml.scores": { type: "array", itemType: "f32", value: vocab.scores },
    "tokenizer.ggml.token_type": { type: "array", itemType: "i32", value: vocab.types },
    "tokenizer.ggml.unknown_token_id": { type: "u32", value: 0 },
    "tokenizer.ggml.bos_token_id": { type: "u32", value: 1 },
    "tokenizer.ggml.eos_token_id": { type: "u32", value: 2 },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
  };
}

export function tinyModelContent(opts: TinyModelOptions = {}): { metadata: Record<string, GgufWriteValue>; tensors: GgufWriteTensor[] } {
  const o = { ...TINY_MODEL_DEFAULTS, ...opts };
  const vocab = tinyVocabulary();
  const nVocab = vocab.tokens.length;
  const rand = prng(o.seed);
  const random = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (rand() - 0.5) * 0.1;
    return a;
  };
  const ones = (n: number) => new Float32Array(n).fill(1);
  const e = o.embedding;
  const ff = o.feedForward;

  // Purely random weights make the server sample arbitrary bytes, which are
  // often invalid UTF-8, and llama-server then answers /completion with a 500.
  // So one embedding dimension is a constant that survives to the last layer,
  // and the output rows score printable tokens up and every other token down
  // along it: the text is still noise, but always valid, printable text.
  const embd = random(e * nVocab);
  const output = random(e * nVocab);
  for (let t = 0; t < nVocab; t++) {
    embd[t * e] = 1;
    const tok = vocab.tokens[t] ?? "";
    const byte = /^<0x([0-9A-F]{2})>$/.exec(tok)?.[1];
    const printable = tok === "\u2581" || (byte !== undefined && parseInt(byte, 16) >= 0x20 && parseInt(byte, 16) < 0x7f);
    output[t * e] = printable ? 1 : -1;
  }
  const tensors: GgufWriteTensor[] = [
    { name: "token_embd.weight", dims: [e, nVocab], data: embd },
    { name: "output_norm.weight", dims: [e], data: ones(e) },
    { name: "output.weight", dims: [e, nVocab], data: output },
  ];
  for (let i = 0; i < o.layers; i++) {
    tensors.push(
      { name: `blk.${i}.attn_norm.weight`, dims: [e], data: ones(e) },
      { name: `blk.${i}.attn_q.weight`, dims: [e, e], data: random(e * e) },
      { name: `blk.${i}.attn_k.weight`, dims: [e, e], data: random(e * e) },
      { name: `blk.${i}.attn_v.weight`, dims: [e, e], data: random(e * e) },
      { name: `blk.${i}.attn_output.weight`, dims: [e, e], data: random(e * e) },
      { name: `blk.${i}.ffn_norm.weight`, dims: [e], data: ones(e) },
      { name: `blk.${i}.ffn_gate.weight`, dims: [e, ff], data: random(e * ff) },
      { name: `blk.${i}.ffn_down.weight`, dims: [ff, e], data: random(ff * e) },
      { name: `blk.${i}.ffn_up.weight`, dims: [e, ff], data: random(e * ff) },
    );
  }

  return {
    metadata: {
      "general.architecture": { type: "string", value: "llama" },
      "general.name": { type: "string", value: o.name },
      "general.file_type": { type: "u32", value: 0 }, // all f32
      "llama.context_length": { type: "u32", value: o.contextLength },
      "llama.embedding_length": { type: "u32", value: e },
      "llama.block_count": { type: "u32", value: o.layers },
      "llama.feed_forward_length": { type: "u32", value: ff },
      "llama.attention.head_count": { type: "u32", value: o.heads },
      "llama.attention.head_count_kv": { type: "u32", value: o.heads },
      "llama.attention.layer_norm_rms_epsilon": { type: "f32", value: 1e-5 },
      "llama.rope.dimension_count": { type: "u32", value: e / o.heads },
      ...llamaTokenizerMetadata(vocab),
    },
    tensors,
  };
}

export async function writeTinyModel(filePath: string, opts: TinyModelOptions = {}): Promise<void> {
  const { metadata, tensors } = tinyModelContent(opts);
  await writeGguf(filePath, metadata, tensors);
}

/** The tiny model as a split set of `count` parts named `<prefix>-0000i-of-0000n.gguf`; returns their paths. */
export async function writeTinyModelSplit(prefix: string, count: number, opts: TinyModelOptions = {}): Promise<string[]> {
  const { metadata, tensors } = tinyModelContent(opts);
  return writeGgufSplit(prefix, metadata, tensors, count);
}
