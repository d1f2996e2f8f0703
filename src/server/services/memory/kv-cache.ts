/**
 * KV cache bytes as llama_kv_cache allocates them: per layer with KV, a K tensor of
 * (K heads × K head size) × cells × streams and a V tensor likewise, each row stored in the cache type's
 * blocks (q8_0: 34 bytes per 32 values; q4_0: 18 per 32). Sliding-window layers hold their own, smaller
 * cache. Without flash attention V is stored transposed, with every layer's rows as wide as the widest.
 */
import type { ModelShape } from "synapse-host-agent/model-shape";
import type { GgmlType } from "synapse-host-agent/ggml-types";
import type { ContextPlan } from "./context-plan";

export interface KvCacheInput {
  typeK: GgmlType;
  typeV: GgmlType;
  flashAttn: boolean;
}

/** Bytes of one row of `width` values, or null when the width is not a whole number of blocks. */
function rowBytes(t: GgmlType, width: number): number | null {
  if (width % t.blockSize !== 0) return null;
  return (width / t.blockSize) * t.blockBytes;
}

/** Total KV cache bytes; throws an Error saying which head size does not fit the cache type's blocks. */
export function kvCacheBytes(shape: ModelShape, plan: ContextPlan, kv: KvCacheInput): number {
  const maxVWidth = Math.max(...shape.kvHeads) * shape.headSizeV;
  let total = 0;
  for (let il = 0; il < shape.layers; il++) {
    const heads = shape.kvHeads[il] ?? 0;
    if (heads === 0) continue;
    const cells = (shape.swaLayers[il] === true ? plan.nCtxSwa : plan.nCtxSeq) * plan.streams;
    const k = rowBytes(kv.typeK, heads * shape.headSizeK);
    const v = rowBytes(kv.typeV, kv.flashAttn ? heads * shape.headSizeV : maxVWidth);
    if (k === null) throw new Error(`--cache-type-k ${kv.typeK.name} stores blocks of ${kv.typeK.blockSize} values; this model's K rows hold ${heads * shape.headSizeK}`);
    if (v === null) throw new Error(`--cache-type-v ${kv.typeV.name} stores blocks of ${kv.typeV.blockSize} values; this model's V rows hold ${heads * shape.headSizeV}`);
    total += (k + v) * cells;
  }
  return total;
}
