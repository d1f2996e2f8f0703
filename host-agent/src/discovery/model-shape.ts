/**
 * How a model's header is read for its shape (discover.ts reads the file, or every part of a split set,
 * each holding some of the tensors).
 */
import type { ReadGgufOptions } from "../gguf/reader.ts";

/**
 * Per-layer arrays (heads, KV heads, feed-forward widths, window pattern) hold one item a layer; a
 * tokenizer's lists hold tens of thousands and are only counted.
 */
export const SHAPE_READ_OPTIONS: ReadGgufOptions = { maxArrayItems: 1024 };
