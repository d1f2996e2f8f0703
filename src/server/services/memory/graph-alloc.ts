/**
 * How big llama.cpp's compute buffer gets for a graph: a replay of ggml's graph allocator (ggml-alloc.c,
 * `ggml_gallocr`) over a description of the graph's tensors. The allocator places every intermediate
 * tensor in one buffer in graph order, best fit among free blocks (the last block may grow the buffer),
 * reuses a parent's bytes for an in-place op when that parent has no other consumer left, and frees a
 * tensor after its last consumer. The buffer's size is the highest offset ever used, so it depends on
 * fragmentation as well as on what is alive at once: summing live tensors misses it by up to a fifth on
 * real shapes, the replay matches llama.cpp to the byte's alignment.
 */

/** One tensor of the graph the allocator sees. Weights and KV cache views are not in it (they have their own buffers). */
export interface GraphTensor {
  /** Bytes (ggml_nbytes). 0 for a node whose result lives elsewhere (e.g. a write into the KV cache). */
  bytes: number;
  /** Tensors it reads (indices into the graph's tensors, earlier ones only). */
  srcs: number[];
  /** A graph input (tokens, positions, masks, indices): allocated before any node, freed after its last reader. */
  input?: boolean;
  /** A graph output (embeddings, logits): never freed, never reused. */
  output?: boolean;
  /** The op may write over a same-sized source it is the last reader of (ggml_op_can_inplace: norms, mul, add, rope, softmax, scale). */
  inplace?: boolean;
  /** Writes into a buffer outside the graph (a KV cache row write): reads its srcs, allocates nothing. */
  external?: boolean;
}

interface FreeBlock {
  offset: number;
  size: number;
}

/** ggml's dynamic allocator (one chunk: CPU and Metal buffers are not split at these sizes). */
class DynAllocator {
  private blocks: FreeBlock[] = [{ offset: 0, size: Number.MAX_SAFE_INTEGER }];
  maxSize = 0;
  constructor(private readonly alignment: number) {}

  private align(n: number): number {
    return Math.ceil(n / this.alignment) * this.alignment;
  }

  alloc(bytes: number): number {
    const size = this.align(bytes);
    let best = -1;
    let bestSize = Number.MAX_SAFE_INTEGER;
    // Best fit among every block but the last; the smallest that fits, the later one on a tie (ggml's <=).
    for (let i = 0; i < this.blocks.length - 1; i++) {
      const b = this.blocks[i]!;
      if (b.size >= size && b.size <= bestSize) {
        best = i;
        bestSize = b.size;
      }
    }
    if (best === -1) best = this.blocks.length - 1;
    const block = this.blocks[best]!;
    const offset = block.offset;
    block.offset += size;
    block.size -= size;
    if (block.size === 0) this.blocks.splice(best, 1);
    this.maxSize = Math.max(this.maxSize, offset + size);
    return offset;
  }

  free(offset: number, bytes: number): void {
    const size = this.align(bytes);
    for (let i = 0; i < this.blocks.length; i++) {
      const b = this.blocks[i]!;
      if (b.offset + b.size === offset) {
        b.size += size;
        const next = this.blocks[i + 1];
        if (next && b.offset + b.size === next.offset) {
          b.size += next.size;
          this.blocks.splice(i + 1, 1);
        }
        return;
      }
      if (offset + size === b.offset) {
        b.offset = offset;
        b.size += size;
        const prev = this.blocks[i - 1];
        if (prev && prev.offset + prev.size === b.offset) {
          prev.size += b.size;
          this.blocks.splice(i, 1);
        }
        return;
      }
    }
    let at = 0;
    while (at < this.blocks.length && this.blocks[at]!.offset < offset) at++;
    this.blocks.splice(at, 0, { offset, size });
  }
}

/**
 * Bytes of the compute buffer ggml allocates for `tensors` (in graph order), with `alignment` the
 * backend buffer's alignment (32 on CPU and Metal). Throws on a source index that is not earlier.
 */
export function computeBufferBytes(tensors: readonly GraphTensor[], alignment = 32): number {
  const n = tensors.length;
  const children = new Int32Array(n);
  const offset = new Float64Array(n);
  const allocated = new Uint8Array(n);
  const a = new DynAllocator(alignment);

  for (let i = 0; i < n; i++) {
    for (const s of tensors[i]!.srcs) {
      if (s >= i || s < 0) throw new Error(`tensor ${i} reads tensor ${s}, which is not an earlier one`);
      children[s]! += 1;
    }
  }
  // Inputs first, in graph order, so no node overwrites them while they are still needed.
  for (let i = 0; i < n; i++) {
    const t = tensors[i]!;
    if (t.input && t.bytes > 0) {
      offset[i] = a.alloc(t.bytes);
      allocated[i] = 1;
    }
  }
  for (let i = 0; i < n; i++) {
    const t = tensors[i]!;
    if (t.input) continue;
    if (!t.external && t.bytes > 0) {
      let reused = false;
      if (t.inplace) {
        for (const s of t.srcs) {
          const p = tensors[s]!;
          if (allocated[s] && !p.output && p.bytes === t.bytes && children[s] === 1) {
            offset[i] = offset[s]!;
            allocated[s] = 0; // the node owns those bytes now
            reused = true;
            break;
          }
        }
      }
      if (!reused) offset[i] = a.alloc(t.bytes);
      allocated[i] = 1;
    }
    for (const s of t.srcs) {
      children[s]! -= 1;
      if (children[s] === 0 && allocated[s] && !tensors[s]!.output) {
        a.free(offset[s]!, tensors[s]!.bytes);
        allocated[s] = 0;
      }
    }
  }
  return a.maxSize;
}
