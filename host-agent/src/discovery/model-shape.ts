/**
 * Reading a model's shape from its file(s) on the host: the first part names a split set's other parts
 * (`-0000i-of-0000n.gguf`), each holding some of the tensors.
 */
import { readGguf, type ReadGgufOptions } from "../gguf/reader.ts";
import { shapeOfGguf } from "../gguf/shape.ts";
import type { ModelShape } from "../shared/model-shape.ts";
import { parseSplitName, splitPartPath } from "../shared/split-name.ts";

/**
 * Per-layer arrays (heads, KV heads, feed-forward widths, window pattern) hold one item a layer; a
 * tokenizer's lists hold tens of thousands and are only counted.
 */
export const SHAPE_READ_OPTIONS: ReadGgufOptions = { maxArrayItems: 1024 };

/** The shape of the model whose (first) file is `modelPath`; throws GgufError / ShapeError saying what is wrong. */
export async function readModelShape(modelPath: string): Promise<ModelShape> {
  const split = parseSplitName(modelPath);
  const paths = split && split.count > 1 ? Array.from({ length: split.count }, (_, i) => splitPartPath(split.prefix, i + 1, split.count)) : [modelPath];
  const files = [];
  for (const file of paths) files.push({ file, gguf: await readGguf(file, SHAPE_READ_OPTIONS) });
  return shapeOfGguf(files);
}
