/**
 * A model's shape (shared/model-shape.ts) from its parsed GGUF header(s), read the way llama.cpp's loader
 * reads them: per-layer keys may be a scalar or an array, K/V head sizes default to embedding / heads, and
 * which layers use sliding-window attention follows the architecture's own rule (llama.cpp's
 * `set_swa_pattern`: with period p, layer i slides unless i % p == p - 1).
 */
import { GGML_TYPES_BY_CODE, ggmlBytes } from "../shared/ggml-types.ts";
import { MAX_SHAPE_LAYERS, type ModelShape } from "../shared/model-shape.ts";
import type { GgufFile, GgufTensorInfo, GgufValue } from "./reader.ts";

/**
 * Architectures whose loader turns sliding-window attention on: the default period (layers per full
 * attention layer) and window, and whether the window key is needed to turn it on at all.
 */
const SWA_RULES: Record<string, { period: number; defaultWindow: number | null }> = {
  gemma2: { period: 2, defaultWindow: 4096 },
  gemma3: { period: 6, defaultWindow: null },
  cohere2: { period: 4, defaultWindow: null },
  exaone4: { period: 4, defaultWindow: null },
};

function num(v: GgufValue | undefined): number | null {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  return null;
}

/** A per-layer key: a scalar for every layer, or an array of one value a layer. */
function perLayer(v: GgufValue | undefined, layers: number, fallback: number): number[] {
  if (v !== undefined && typeof v === "object" && v.kind === "array" && v.items) {
    return Array.from({ length: layers }, (_, i) => num(v.items![i] as GgufValue) ?? fallback);
  }
  const n = num(v);
  return new Array<number>(layers).fill(n ?? fallback);
}

export class ShapeError extends Error {}

/**
 * The shape of a model from its file(s): `files` is one file, or every part of a split set in order (the
 * first holds the metadata). Throws ShapeError naming the missing key for a file llama.cpp could not load.
 */
export function shapeOfGguf(files: { file: string; gguf: GgufFile }[]): ModelShape {
  const head = files[0];
  if (!head) throw new ShapeError("no files");
  const md = head.gguf.metadata;
  const arch = md.get("general.architecture");
  if (typeof arch !== "string") throw new ShapeError(`${head.file}: no general.architecture`);
  const key = (k: string) => md.get(`${arch}.${k}`);
  const need = (k: string): number => {
    const v = num(key(k));
    if (v === null) throw new ShapeError(`${head.file}: no ${arch}.${k}`);
    return v;
  };

  const layers = need("block_count");
  if (layers < 1 || layers > MAX_SHAPE_LAYERS) throw new ShapeError(`${head.file}: ${arch}.block_count ${layers} is out of range`);
  const embedding = need("embedding_length");
  const heads = perLayer(key("attention.head_count"), layers, 0);
  const heads0 = heads[0] ?? 0;
  const kvHeads = perLayer(key("attention.head_count_kv"), layers, heads0);
  const headSizeK = num(key("attention.key_length")) ?? (heads0 > 0 ? embedding / heads0 : 0);
  const headSizeV = num(key("attention.value_length")) ?? (heads0 > 0 ? embedding / heads0 : 0);

  let slidingWindow = num(key("attention.sliding_window")) ?? 0;
  let swaLayers: boolean[] = [];
  const rule = SWA_RULES[arch];
  if (rule) {
    if (slidingWindow === 0 && rule.defaultWindow !== null) slidingWindow = rule.defaultWindow;
    const pattern = key("attention.sliding_window_pattern");
    if (slidingWindow > 0) {
      if (typeof pattern === "object" && pattern.kind === "array" && pattern.items) {
        swaLayers = Array.from({ length: layers }, (_, i) => pattern.items![i] === true);
      } else {
        const period = num(pattern) ?? rule.period;
        swaLayers = Array.from({ length: layers }, (_, i) => period === 0 || i % period < period - 1);
      }
    }
  }
  if (!swaLayers.some(Boolean)) {
    // llama.cpp runs every layer with full attention: the window key alone changes nothing.
    swaLayers = [];
    slidingWindow = 0;
  }

  // One pass over every shard's tensors (a thousand or more in a big model; this runs for every model a
  // discovery finds): bytes by type and by shard, and the two tensors looked up by name.
  const tensorBytesByType: Record<string, number> = {};
  let embd: GgufTensorInfo | undefined;
  let attentionBias = false;
  const shards: ModelShape["shards"] = [];
  for (const { file, gguf } of files) {
    let sum = 0;
    for (const t of gguf.tensors) {
      const type = GGML_TYPES_BY_CODE.get(t.type);
      if (!type) throw new ShapeError(`${file}: tensor ${t.name} has ggml type ${t.type}, which this agent does not know (update the agent)`);
      let elements = 1;
      for (const d of t.dims) elements *= d;
      const b = ggmlBytes(type, t.dims[0] ?? 1, elements);
      tensorBytesByType[type.name] = (tensorBytesByType[type.name] ?? 0) + b;
      sum += b;
      if (embd === undefined && t.name === "token_embd.weight") embd = t;
      else if (t.name === "blk.0.attn_q.bias") attentionBias = true;
    }
    shards.push({ file, tensorBytes: sum });
  }
  const tokens = md.get("tokenizer.ggml.tokens");
  const vocab = (typeof tokens === "object" && tokens.kind === "array" ? tokens.length : null) ?? embd?.dims[1] ?? 0;

  return {
    version: 1,
    architecture: arch,
    contextLength: num(key("context_length")) ?? 0,
    embedding,
    vocab,
    layers,
    heads,
    kvHeads,
    headSizeK,
    headSizeV,
    feedForward: perLayer(key("feed_forward_length"), layers, 0),
    experts: num(key("expert_count")) ?? 0,
    expertsUsed: num(key("expert_used_count")) ?? 0,
    slidingWindow,
    swaLayers,
    attentionBias,
    tensorBytesByType,
    weightsBytes: shards.reduce((s, x) => s + x.tensorBytes, 0),
    shards,
  };
}
