/**
 * ggml tensor types: code, name (as llama.cpp's `--cache-type-k` and its logs spell it, lower case), and
 * storage (elements per block, bytes per block), as ggml's type_traits define them. Shared by the GGUF
 * reader (tensor bytes by type), the writer (sparse test models) and the app's memory estimator (KV cache
 * types), so the block sizes live in one place. Plain data, no imports.
 */
export interface GgmlType {
  code: number;
  name: string;
  /** Elements per block (1 for plain floats and integers). */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

const TYPES: GgmlType[] = [
  { code: 0, name: "f32", blockSize: 1, blockBytes: 4 },
  { code: 1, name: "f16", blockSize: 1, blockBytes: 2 },
  { code: 2, name: "q4_0", blockSize: 32, blockBytes: 18 },
  { code: 3, name: "q4_1", blockSize: 32, blockBytes: 20 },
  { code: 6, name: "q5_0", blockSize: 32, blockBytes: 22 },
  { code: 7, name: "q5_1", blockSize: 32, blockBytes: 24 },
  { code: 8, name: "q8_0", blockSize: 32, blockBytes: 34 },
  { code: 9, name: "q8_1", blockSize: 32, blockBytes: 36 },
  { code: 10, name: "q2_k", blockSize: 256, blockBytes: 84 },
  { code: 11, name: "q3_k", blockSize: 256, blockBytes: 110 },
  { code: 12, name: "q4_k", blockSize: 256, blockBytes: 144 },
  { code: 13, name: "q5_k", blockSize: 256, blockBytes: 176 },
  { code: 14, name: "q6_k", blockSize: 256, blockBytes: 210 },
  { code: 15, name: "q8_k", blockSize: 256, blockBytes: 292 },
  { code: 16, name: "iq2_xxs", blockSize: 256, blockBytes: 66 },
  { code: 17, name: "iq2_xs", blockSize: 256, blockBytes: 74 },
  { code: 18, name: "iq3_xxs", blockSize: 256, blockBytes: 98 },
  { code: 19, name: "iq1_s", blockSize: 256, blockBytes: 50 },
  { code: 20, name: "iq4_nl", blockSize: 32, blockBytes: 18 },
  { code: 21, name: "iq3_s", blockSize: 256, blockBytes: 110 },
  { code: 22, name: "iq2_s", blockSize: 256, blockBytes: 82 },
  { code: 23, name: "iq4_xs", blockSize: 256, blockBytes: 136 },
  { code: 24, name: "i8", blockSize: 1, blockBytes: 1 },
  { code: 25, name: "i16", blockSize: 1, blockBytes: 2 },
  { code: 26, name: "i32", blockSize: 1, blockBytes: 4 },
  { code: 27, name: "i64", blockSize: 1, blockBytes: 8 },
  { code: 28, name: "f64", blockSize: 1, blockBytes: 8 },
  { code: 29, name: "iq1_m", blockSize: 256, blockBytes: 56 },
  { code: 30, name: "bf16", blockSize: 1, blockBytes: 2 },
  { code: 34, name: "tq1_0", blockSize: 256, blockBytes: 54 },
  { code: 35, name: "tq2_0", blockSize: 256, blockBytes: 66 },
  { code: 39, name: "mxfp4", blockSize: 32, blockBytes: 17 },
];

export const GGML_TYPES_BY_CODE: ReadonlyMap<number, GgmlType> = new Map(TYPES.map((t) => [t.code, t]));
export const GGML_TYPES_BY_NAME: ReadonlyMap<string, GgmlType> = new Map(TYPES.map((t) => [t.name, t]));

/**
 * Bytes of `elements` values of type `t` in a row of `rowLength` (ggml stores whole blocks per row).
 * Throws when the row length is not a whole number of blocks: ggml refuses such a tensor too.
 */
export function ggmlBytes(t: GgmlType, rowLength: number, elements: number): number {
  if (rowLength % t.blockSize !== 0) throw new Error(`a ${t.name} row must be a multiple of ${t.blockSize} elements, not ${rowLength}`);
  return (elements / t.blockSize) * t.blockBytes;
}
