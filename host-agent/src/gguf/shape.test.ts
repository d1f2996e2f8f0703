import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { modelShapeSchema } from "../shared/model-shape.ts";
import { readGguf } from "./reader.ts";
import { shapeOfGguf } from "./shape.ts";
import { writeShapedModel, writeShapedModelSplit, type ShapedModelOptions } from "./shaped-model.ts";
import { writeGguf } from "./writer.ts";
import { tinyModelContent } from "./tiny-model.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "synapse-shape-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const gemma3: ShapedModelOptions = { architecture: "gemma3", embedding: 1152, layers: 12, heads: 4, kvHeads: 1, headSize: 256, feedForward: 6912, vocab: 65536, contextLength: 32768, slidingWindow: 512 };

describe("shaped models (sparse GGUF files)", () => {
  it("are hundreds of MiB long and store only their header", async () => {
    const file = path.join(dir, "g3.gguf");
    await writeShapedModel(file, gemma3);
    const st = await stat(file);
    expect(st.size).toBeGreaterThan(700 * 1024 * 1024);
    expect(st.blocks * 512).toBeLessThan(4 * 1024 * 1024);
  });
});

describe("shapeOfGguf", () => {
  it("reads layers, heads, head sizes, vocabulary and the sliding-window layers as llama.cpp does", async () => {
    const file = path.join(dir, "g3.gguf");
    await writeShapedModel(file, gemma3);
    const shape = shapeOfGguf([{ file, gguf: await readGguf(file) }]);
    expect(modelShapeSchema.parse(shape)).toEqual(shape);
    expect(shape).toMatchObject({ architecture: "gemma3", layers: 12, embedding: 1152, vocab: 65536, headSizeK: 256, headSizeV: 256, contextLength: 32768, slidingWindow: 512 });
    expect(shape.kvHeads).toEqual(new Array(12).fill(1));
    expect(shape.heads).toEqual(new Array(12).fill(4));
    // gemma3's period of 6: five sliding layers, then one full.
    expect(shape.swaLayers.map((s) => (s ? "s" : "F")).join("")).toBe("sssssFsssssF");
    // f16 weights: 2 bytes each; f32 norms: 4.
    const st = await stat(file);
    expect(shape.weightsBytes).toBeGreaterThan(st.size - 4 * 1024 * 1024);
    expect(Object.keys(shape.tensorBytesByType).sort()).toEqual(["f16", "f32"]);
  });

  it("sums every shard of a split set, in order", async () => {
    const opts: ShapedModelOptions = { architecture: "llama", embedding: 512, layers: 4, heads: 8, kvHeads: 2, feedForward: 1024, vocab: 4000, contextLength: 4096, weightType: "q8_0" };
    const single = path.join(dir, "one.gguf");
    await writeShapedModel(single, opts);
    const whole = shapeOfGguf([{ file: single, gguf: await readGguf(single) }]);
    const parts = await writeShapedModelSplit(path.join(dir, "split"), 3, opts);
    const split = shapeOfGguf(await Promise.all(parts.map(async (file) => ({ file, gguf: await readGguf(file) }))));
    expect(split.shards.map((s) => path.basename(s.file))).toEqual(["split-00001-of-00003.gguf", "split-00002-of-00003.gguf", "split-00003-of-00003.gguf"]);
    expect(split.weightsBytes).toBe(whole.weightsBytes);
    expect(split.tensorBytesByType).toEqual(whole.tensorBytesByType);
    expect(split.kvHeads).toEqual([2, 2, 2, 2]);
    // q8_0: 34 bytes per 32 values.
    expect(whole.tensorBytesByType.q8_0).toBe(((512 * 4000 * 2 + 4 * (512 * 512 * 2 + 512 * 128 * 2 + 512 * 1024 * 3)) / 32) * 34);
  });

  it("treats a window key on an architecture without sliding-window attention as full attention (llama.cpp ignores it)", async () => {
    const { metadata, tensors } = tinyModelContent();
    const file = path.join(dir, "tiny-swa.gguf");
    await writeGguf(file, { ...metadata, "llama.attention.sliding_window": { type: "u32", value: 128 } }, tensors);
    const shape = shapeOfGguf([{ file, gguf: await readGguf(file) }]);
    expect(shape.slidingWindow).toBe(0);
    expect(shape.swaLayers).toEqual([]);
    expect(shape.headSizeK).toBe(16); // embedding 64 / 4 heads, no key_length key
    expect(shape.vocab).toBe(260);
  });

  it("says which key a file llama.cpp could not load lacks", async () => {
    const { metadata, tensors } = tinyModelContent();
    delete metadata["llama.block_count"];
    const file = path.join(dir, "no-layers.gguf");
    await writeGguf(file, metadata, tensors);
    const gguf = await readGguf(file);
    expect(() => shapeOfGguf([{ file, gguf }])).toThrow(/no llama.block_count/);
  });
});

