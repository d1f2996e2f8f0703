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
  /** Tokens in the reserved micro-batch (min(n_ctx, n_ubatch)); every one is an output. */
  tokens: number;
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
  const outIds = add({ bytes: T * 4, srcs: [], input: true });

  let inpL = add({ bytes: u, srcs: [tokens] }); // token embeddings (get_rows)
  if (traits.embedScale) inpL = inplace(inpL);

  for (let il = 0; il < shape.layers; il++) {
    const H = shape.heads[il] ?? 0;
    const Hkv = shape.kvHeads[il] ?? 0;
    const last = il === shape.layers - 1;
    let cur = inplace(inpL); // rms_norm (inpL has a second reader: the residual add)
    cur = inplace(cur); // * attn_norm
    // A projection (matmul), its bias, its per-head norm, and rope. Rope gets bytes of its own: ggml
    // does not write it over the projection here (its source is a reshape view), as llama.cpp's own
    // reservation shows (with it in place, attention peaks come out one [n_embd, tokens] tensor short).
    const proj = (width: number, rope: boolean) => {
      let t = add({ bytes: width * T * F32, srcs: [cur] });
      if (shape.attentionBias) t = inplace(t);
      if (traits.qkNorm && rope) t = inplace(inplace(t));
      if (rope) t = add({ bytes: g[t]!.bytes, srcs: [t, pos] });
      return t;
    };
    const rotate = (t: number) => add({ bytes: g[t]!.bytes, srcs: [t] }); // a mul_mat by the rotation
    let q = proj(shape.headSizeK * H, true);
    if (traits.qScale) q = inplace(q);
    if (plan.rotateK) q = rotate(q);
    let k = -1;
    let v = -1;
    const projK = () => (plan.rotateK ? rotate(proj(shape.headSizeK * Hkv, true)) : proj(shape.headSizeK * Hkv, true));
    const projV = () => (plan.rotateV ? rotate(proj(shape.headSizeV * Hkv, false)) : proj(shape.headSizeV * Hkv, false));
    if (traits.kvOrder === "vk") {
      v = projV();
      k = projK();
    } else {
      k = projK();
      v = projV();
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
    if (last) {
      o = add({ bytes: u, srcs: [o, outIds] });
      sa = add({ bytes: u, srcs: [inpL, outIds] });
    }
    const ffnInp = add({ bytes: u, srcs: [o, sa], inplace: true });
    cur = inplace(inplace(ffnInp));
    const ffWidth = (shape.feedForward[il] ?? 0) * Math.max(1, shape.expertsUsed);
    const gate = add({ bytes: ffWidth * T * F32, srcs: [cur] });
    const up = add({ bytes: ffWidth * T * F32, srcs: [cur] });
    const glu = add({ bytes: ffWidth * T * F32, srcs: [gate, up] });
    let down = add({ bytes: u, srcs: [glu] });
    if (traits.postNorms) down = inplace(inplace(down));
    inpL = add({ bytes: u, srcs: [down, ffnInp], inplace: true });
  }
  const norm = inplace(inpL);
  const embd = add({ bytes: u, srcs: [norm], inplace: true, output: true });
  let logits = add({ bytes: shape.vocab * T * F32, srcs: [embd], output: !traits.finalSoftcap });
  if (traits.finalSoftcap) {
    logits = inplace(inplace(logits));
    add({ bytes: shape.vocab * T * F32, srcs: [logits], inplace: true, output: true });
  }
  return g;
}
