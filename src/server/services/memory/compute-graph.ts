/**
 * The forward graph llama.cpp reserves its compute buffer for, as the tensors ggml's allocator sees
 * (graph-alloc.ts): one micro-batch of `tokens` tokens, every one an output (the worst case llama.cpp
 * reserves for), over a KV cache of `nKv` cells per stream. Written after llama.cpp's graph builders
 * (src/models/*.cpp, llm_graph_context::build_attn / build_ffn) and checked node by node against the
 * graph its scheduler prints (GGML_SCHED_DEBUG=2): same tensors, sizes, readers and order.
 */
import type { ModelShape } from "synapse-host-agent/model-shape";
import type { GraphTensor } from "./graph-alloc";

/** How an architecture's layer differs from llama's. */
export interface ArchTraits {
  /** Embeddings scaled by sqrt(n_embd) after the lookup (gemma). */
  embedScale: boolean;
  /** RMS norm on Q and K per head (gemma3, qwen3). */
  qkNorm: boolean;
  /** Q scaled by the attention scale before attention (gemma). */
  qScale: boolean;
  /** Norms after attention and after the feed-forward block (gemma2, gemma3). */
  postNorms: boolean;
  /** tanh soft-capping of attention scores without flash attention (gemma2). */
  attnSoftcap: boolean;
  /** tanh soft-capping of the logits (gemma2). */
  finalSoftcap: boolean;
  /** Order of the K and V projections in the graph. */
  kvOrder: "vk" | "kv";
}

const LLAMA: ArchTraits = { embedScale: false, qkNorm: false, qScale: false, postNorms: false, attnSoftcap: false, finalSoftcap: false, kvOrder: "vk" };

/** Architectures whose graph is written here; others are estimated with llama's (noted in the estimate). */
export const ARCH_TRAITS: Record<string, ArchTraits> = {
  llama: LLAMA,
  mistral: LLAMA,
  granite: LLAMA,
  qwen2: LLAMA,
  qwen3: { ...LLAMA, qkNorm: true, kvOrder: "kv" },
  gemma: { ...LLAMA, embedScale: true, qScale: true, kvOrder: "kv" },
  gemma2: { ...LLAMA, embedScale: true, qScale: true, postNorms: true, attnSoftcap: true, finalSoftcap: true, kvOrder: "kv" },
  gemma3: { ...LLAMA, embedScale: true, qkNorm: true, qScale: true, postNorms: true, kvOrder: "kv" },
};

export interface GraphPlan {
  /** Tokens in the reserved micro-batch (min(n_ctx, n_ubatch)). */
  tokens: number;
  /**
   * Of them, tokens whose logits the graph computes: llama-server reserves for one per slot
   * (n_outputs_max = --parallel), or every token when it serves embeddings; llama-fit-params for all.
   */
  outputs: number;
  /** KV cells per stream of the full-attention cache and of the sliding-window cache. */
  nKv: number;
  nKvSwa: number;
  flashAttn: boolean;
  /**
   * A quantized K (V) cache with head sizes that are multiples of 64: llama.cpp rotates Q and K (V and the
   * attention output) by a Hadamard matrix so the quantization loses less (llama_kv_cache attn_rot_k/v).
   */
  rotateK: boolean;
  rotateV: boolean;
}

const F32 = 4;

/** The graph's tensors in order, for computeBufferBytes. */
export function forwardGraph(shape: ModelShape, traits: ArchTraits, plan: GraphPlan): GraphTensor[] {
  const g: GraphTensor[] = [];
  const add = (t: GraphTensor): number => g.push(t) - 1;
  const T = plan.tokens;
  const E = shape.embedding;
  const u = E * T * F32;
  const inplace = (src: number, extra: number[] = []): number => add({ bytes: g[src]!.bytes, srcs: [src, ...extra], inplace: true });

  // Inputs, in the order the graph first reads them (the allocator places them first, in this order).
  const tokens = add({ bytes: T * 4, srcs: [], input: true });
  // The embeddings input of the other path (a batch of vectors instead of tokens): an input the graph
  // holds but does not read in a token batch, so it is allocated with the inputs and never freed.
  add({ bytes: u, srcs: [], input: true });
  const pos = add({ bytes: T * 4, srcs: [], input: true });
  const swa = (il: number) => shape.swaLayers[il] === true;
  const kvInputs = new Map<boolean, { kIdx: number; vIdx: number; mask: number }>();
  const maxVGqa = Math.max(...shape.kvHeads) * shape.headSizeV;
  const inputsFor = (isSwa: boolean) => {
    let inp = kvInputs.get(isSwa);
    if (!inp) {
      const nKv = isSwa ? plan.nKvSwa : plan.nKv;
      inp = {
        kIdx: add({ bytes: T * 8, srcs: [], input: true }),
        // Without flash attention V is stored transposed and written element by element: an index per element.
        vIdx: add({ bytes: plan.flashAttn ? T * 8 : T * maxVGqa * 8, srcs: [], input: true }),
        mask: add({ bytes: nKv * T * (plan.flashAttn ? 2 : 4), srcs: [], input: true }),
      };
      kvInputs.set(isSwa, inp);
    }
    return inp;
  };
  // Every layer kind's inputs exist before the first node, in layer order.
  for (let il = 0; il < shape.layers; il++) if ((shape.kvHeads[il] ?? 0) > 0) inputsFor(swa(il));
  const nOut = Math.max(1, Math.min(plan.outputs, T));
  const outIds = add({ bytes: nOut * 4, srcs: [], input: true });

  let inpL = add({ bytes: u, srcs: [tokens] }); // token embeddings (get_rows)
  if (traits.embedScale) inpL = inplace(inpL);

  // The layer's normed input, read by its Q, K and V projections.
  let cur = -1;
  // A projection (matmul), its bias, its per-head norm, and rope. Rope gets bytes of its own: ggml
  // does not write it over the projection here (its source is a reshape view), as llama.cpp's own
  // reservation shows (with it in place, attention peaks come out one [n_embd, tokens] tensor short).
  // (Defined once, not per layer: a graph of 48 layers built for every model a discovery estimates.)
  const proj = (width: number, rope: boolean) => {
    let t = add({ bytes: width * T * F32, srcs: [cur] });
    if (shape.attentionBias) t = inplace(t);
    if (traits.qkNorm && rope) t = inplace(inplace(t));
    if (rope) t = add({ bytes: g[t]!.bytes, srcs: [t, pos] });
    return t;
  };
  const rotate = (t: number) => add({ bytes: g[t]!.bytes, srcs: [t] }); // a mul_mat by the rotation
  const projK = (Hkv: number) => (plan.rotateK ? rotate(proj(shape.headSizeK * Hkv, true)) : proj(shape.headSizeK * Hkv, true));
  const projV = (Hkv: number) => (plan.rotateV ? rotate(proj(shape.headSizeV * Hkv, false)) : proj(shape.headSizeV * Hkv, false));

  for (let il = 0; il < shape.layers; il++) {
    const H = shape.heads[il] ?? 0;
    const Hkv = shape.kvHeads[il] ?? 0;
    const last = il === shape.layers - 1;
    cur = inplace(inpL); // rms_norm (inpL has a second reader: the residual add)
    cur = inplace(cur); // * attn_norm
    let q = proj(shape.headSizeK * H, true);
    if (traits.qScale) q = inplace(q);
    if (plan.rotateK) q = rotate(q);
    let k = -1;
    let v = -1;
    if (traits.kvOrder === "vk") {
      v = projV(Hkv);
      k = projK(Hkv);
    } else {
      k = projK(Hkv);
      v = projV(Hkv);
    }
    const inp = inputsFor(swa(il));
    add({ bytes: 0, srcs: [k, inp.kIdx], external: true }); // K written into the cache
    add({ bytes: 0, srcs: [v, inp.vIdx], external: true }); // V written into the cache
    const nKv = swa(il) ? plan.nKvSwa : plan.nKv;
    let attn: number;
    if (plan.flashAttn) {
      attn = add({ bytes: shape.headSizeV * H * T * F32, srcs: [q, inp.mask] });
    } else {
      let kq = add({ bytes: nKv * T * H * F32, srcs: [q] });
      if (traits.attnSoftcap) kq = inplace(inplace(inplace(kq)));
      kq = inplace(kq, [inp.mask]); // soft_max_ext
      const kqv = add({ bytes: shape.headSizeV * H * T * F32, srcs: [kq] });
      attn = add({ bytes: shape.headSizeV * H * T * F32, srcs: [kqv] }); // cont of the permuted result
    }
    if (plan.rotateV) attn = rotate(attn);
    let o = add({ bytes: u, srcs: [attn] });
    if (traits.postNorms) o = inplace(inplace(o));
    let sa = inpL;
    // The last layer keeps only the output rows from here on.
    const rows = last ? nOut : T;
    const uRows = E * rows * F32;
    if (last) {
      o = add({ bytes: uRows, srcs: [o, outIds] });
      sa = add({ bytes: uRows, srcs: [inpL, outIds] });
    }
    const ffnInp = add({ bytes: uRows, srcs: [o, sa], inplace: true });
    cur = inplace(inplace(ffnInp));
    const ffWidth = (shape.feedForward[il] ?? 0) * Math.max(1, shape.expertsUsed);
    const gate = add({ bytes: ffWidth * rows * F32, srcs: [cur] });
    const up = add({ bytes: ffWidth * rows * F32, srcs: [cur] });
    const glu = add({ bytes: ffWidth * rows * F32, srcs: [gate, up] });
    let down = add({ bytes: uRows, srcs: [glu] });
    if (traits.postNorms) down = inplace(inplace(down));
    inpL = add({ bytes: uRows, srcs: [down, ffnInp], inplace: true });
  }
  const norm = inplace(inpL);
  const embd = add({ bytes: E * nOut * F32, srcs: [norm], inplace: true, output: true });
  let logits = add({ bytes: shape.vocab * nOut * F32, srcs: [embd], output: !traits.finalSoftcap });
  if (traits.finalSoftcap) {
    logits = inplace(inplace(logits));
    add({ bytes: shape.vocab * nOut * F32, srcs: [logits], inplace: true, output: true });
  }
  return g;
}
