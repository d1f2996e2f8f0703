/**
 * The estimator against llama.cpp's own numbers: the references below are what `llama-fit-params
 * --fit-print on` (llama.cpp 80fb11a, the project's build) prints for the same shapes and settings, in
 * whole MiB rounded down (its breakdown's unit). The shapes are read from sparse GGUF files the
 * project's writer makes, through the agent's reader, as discovery reads them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelShape } from "synapse-host-agent/model-shape";
import { readGguf } from "../../../../host-agent/src/gguf/reader";
import { shapeOfGguf } from "../../../../host-agent/src/gguf/shape";
import { writeShapedModel, type ShapedModelOptions } from "../../../../host-agent/src/gguf/shaped-model";
import { DEFAULT_CACHE_RAM_MIB, estimateForModel, estimateMemory, isEstimate, MiB, parseStoredShape, type EstimateModel, type EstimateSettings } from "./estimate";
import type { MemoryEstimate, NoEstimate } from "./estimate-types";

const SHAPES: Record<string, ShapedModelOptions> = {
  llama: { architecture: "llama", embedding: 2048, layers: 8, heads: 32, kvHeads: 8, feedForward: 5632, vocab: 32000, contextLength: 32768 },
  qwen2: { architecture: "qwen2", embedding: 1536, layers: 8, heads: 12, kvHeads: 2, headSize: 128, feedForward: 8960, vocab: 48000, contextLength: 32768 },
  gemma3: { architecture: "gemma3", embedding: 1152, layers: 12, heads: 4, kvHeads: 1, headSize: 256, feedForward: 6912, vocab: 65536, contextLength: 32768, slidingWindow: 512 },
};

let dir = "";
const shapes: Record<string, ModelShape> = {};
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "synapse-estimate-"));
  for (const [name, opts] of Object.entries(SHAPES)) {
    const file = path.join(dir, `${name}.gguf`);
    await writeShapedModel(file, opts);
    shapes[name] = shapeOfGguf([{ file, gguf: await readGguf(file) }]);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const base: EstimateSettings = { ctxSize: 4096, parallel: 1, batchSize: 2048, ubatchSize: 512, flashAttn: "on", loadMode: "mmap", gpuLayers: 99, cacheTypeK: "f16", cacheTypeV: "f16", cacheRamMiB: 0 };

function ok(e: MemoryEstimate | NoEstimate): MemoryEstimate {
  if (!isEstimate(e)) throw new Error(e.unavailable);
  return e;
}
const floorMiB = (b: number) => Math.floor(b / MiB);

describe("estimateMemory against llama-fit-params", () => {
  // [model, ctx, parallel, flash attention, ubatch, cache type] -> [model, context, compute] in MiB
  const cases: [string, number, number, "on" | "off", number, string, [number, number, number]][] = [
    ["llama", 8192, 1, "off", 512, "f16", [938, 128, 550]],
    ["llama", 2048, 4, "off", 512, "f16", [938, 32, 85]],
    ["llama", 32768, 4, "on", 512, "q8_0", [938, 272, 74]],
    ["llama", 512, 1, "on", 128, "q8_0", [938, 4, 17]],
    ["qwen2", 32768, 1, "off", 512, "f16", [995, 256, 848]],
    ["gemma3", 2048, 1, "on", 512, "f16", [758, 14, 132]],
    ["gemma3", 8192, 4, "on", 128, "f16", [758, 46, 33]],
    ["gemma3", 32768, 1, "off", 512, "f16", [758, 74, 334]],
  ];
  it.each(cases)("%s ctx %i parallel %i fa %s ubatch %i %s", (m, ctx, parallel, fa, ub, ct, [model, context, compute]) => {
    // llama-fit-params reserves for an output per token (allOutputs); llama-server for one per slot.
    const e = ok(estimateMemory(shapes[m]!, { ...base, ctxSize: ctx, parallel, flashAttn: fa, ubatchSize: ub, cacheTypeK: ct, cacheTypeV: ct, allOutputs: true }));
    expect([floorMiB(e.weightsBytes), floorMiB(e.kvCacheBytes), floorMiB(e.computeBytes)]).toEqual([model, context, compute]);
  });
});

describe("KV cache", () => {
  it("counts K and V per layer over the KV heads (grouped-query attention), not the query heads", () => {
    const e = ok(estimateMemory(shapes.llama!, base));
    // 8 layers x (K + V) x 8 KV heads x 64 x 4096 cells x 2 bytes (f16)
    expect(e.kvCacheBytes).toBe(8 * 2 * 8 * 64 * 4096 * 2);
  });

  it("divides the context among slots as llama-server does: each slot padded to 256 cells", () => {
    // 1000 / 4 = 250 per slot, padded to 256: 1024 cells in all.
    const e = ok(estimateMemory(shapes.llama!, { ...base, ctxSize: 1000, parallel: 4 }));
    expect(e.kvCacheBytes).toBe(8 * 2 * 8 * 64 * 1024 * 2);
    expect(e.notes.join(" ")).toMatch(/256 per slot/);
  });

  it("stores q8_0 in blocks of 32 values in 34 bytes and q4_0 in 18", () => {
    const f16 = ok(estimateMemory(shapes.llama!, base)).kvCacheBytes;
    expect(ok(estimateMemory(shapes.llama!, { ...base, cacheTypeK: "q8_0", cacheTypeV: "q8_0" })).kvCacheBytes).toBe((f16 / 64) * 34);
    expect(ok(estimateMemory(shapes.llama!, { ...base, cacheTypeK: "q4_0", cacheTypeV: "q4_0" })).kvCacheBytes).toBe((f16 / 64) * 18);
  });

  it("caps sliding-window layers by their window plus a micro-batch, full layers by the context", () => {
    const e = ok(estimateMemory(shapes.gemma3!, { ...base, ctxSize: 32768 }));
    // gemma3: 10 of 12 layers slide (window 512 + ubatch 512 = 1024 cells), 2 see all 32768.
    const perCell = 2 * 1 * 256 * 2;
    expect(e.kvCacheBytes).toBe(10 * 1024 * perCell + 2 * 32768 * perCell);
  });

  it("uses the trained context for --ctx-size 0", () => {
    const zero = ok(estimateMemory(shapes.llama!, { ...base, ctxSize: 0 }));
    const trained = ok(estimateMemory(shapes.llama!, { ...base, ctxSize: 32768 }));
    expect(zero.kvCacheBytes).toBe(trained.kvCacheBytes);
  });

  it("refuses what llama-server refuses, saying what to change", () => {
    const noFa = estimateMemory(shapes.llama!, { ...base, flashAttn: "off", cacheTypeV: "q8_0" });
    expect(noFa).toEqual({ unavailable: expect.stringMatching(/needs flash attention on/) });
    expect(estimateMemory(shapes.llama!, { ...base, cacheTypeK: "q9_9" })).toEqual({ unavailable: expect.stringMatching(/--cache-type-k q9_9 is not a cache type/) });
    // One KV head of 40 values: a K row of 40 is not a whole number of q8_0 blocks.
    const odd = { ...shapes.llama!, kvHeads: shapes.llama!.kvHeads.map(() => 1), headSizeK: 40, headSizeV: 40 };
    expect(estimateMemory(odd, { ...base, cacheTypeK: "q8_0" })).toEqual({ unavailable: expect.stringMatching(/blocks of 32 values; this model's K rows hold 40/) });
  });
});

describe("estimateMemory against llama-server's own breakdown", () => {
  // Recorded from llama-server -lv 4 --fit off (common_memory_breakdown_print at exit, MiB rounded down);
  // accuracy.integration.test.ts runs these against the real server.
  const cases: [string, number, number, "on" | "off", number, string, number][] = [
    ["llama", 512, 1, "on", 512, "f16", 49],
    ["llama", 32768, 4, "on", 512, "q8_0", 53],
    ["qwen2", 4096, 1, "on", 512, "q8_0", 65],
    ["gemma3", 2048, 1, "off", 512, "f16", 59],
    ["gemma3", 16384, 1, "on", 512, "f16", 66],
  ];
  it.each(cases)("%s ctx %i parallel %i fa %s ubatch %i %s: compute %i MiB (one output per slot)", (m, ctx, parallel, fa, ub, ct, compute) => {
    const e = ok(estimateMemory(shapes[m]!, { ...base, ctxSize: ctx, parallel, flashAttn: fa, ubatchSize: ub, cacheTypeK: ct, cacheTypeV: ct }));
    expect(floorMiB(e.computeBytes)).toBe(compute);
  });

  it("reserves every token's logits when the server computes embeddings", () => {
    const chat = ok(estimateMemory(shapes.llama!, base)).computeBytes;
    const embd = ok(estimateMemory(shapes.llama!, { ...base, embeddings: true })).computeBytes;
    expect(embd - chat).toBeGreaterThan(15 * MiB); // 32000 x 511 more logits x 4 bytes = 62 MiB, partly in freed space
  });
});

describe("compute buffer and prompt cache", () => {
  it("grows with the context without flash attention (the attention scores) and barely with it", () => {
    const small = ok(estimateMemory(shapes.llama!, { ...base, flashAttn: "off", ctxSize: 4096 })).computeBytes;
    const big = ok(estimateMemory(shapes.llama!, { ...base, flashAttn: "off", ctxSize: 16384 })).computeBytes;
    expect(big - small).toBeGreaterThan(3 * 256 * MiB); // 32 heads x 512 tokens x 12288 more cells x 4 bytes = 768 MiB
    const faSmall = ok(estimateMemory(shapes.llama!, { ...base, ctxSize: 4096 })).computeBytes;
    const faBig = ok(estimateMemory(shapes.llama!, { ...base, ctxSize: 16384 })).computeBytes;
    expect(faBig - faSmall).toBeLessThan(16 * MiB);
  });

  it("follows the micro-batch: a quarter of the tokens, about a quarter of the buffer", () => {
    const full = ok(estimateMemory(shapes.llama!, { ...base, ubatchSize: 512 })).computeBytes;
    const quarter = ok(estimateMemory(shapes.llama!, { ...base, ubatchSize: 128 })).computeBytes;
    expect(quarter / full).toBeGreaterThan(0.2);
    expect(quarter / full).toBeLessThan(0.3);
  });

  it("charges llama-server's default --cache-ram of 8192 MiB, or the model's cap, in the total", () => {
    const d = ok(estimateMemory(shapes.llama!, { ...base, cacheRamMiB: null }));
    expect(d.promptCacheBytes).toBe(DEFAULT_CACHE_RAM_MIB * MiB);
    expect(d.notes.join(" ")).toMatch(/default --cache-ram 8192 MiB/);
    const capped = ok(estimateMemory(shapes.llama!, { ...base, cacheRamMiB: 512 }));
    expect(capped.promptCacheBytes).toBe(512 * MiB);
    expect(capped.totalBytes).toBe(capped.weightsBytes + capped.kvCacheBytes + capped.computeBytes + 512 * MiB);
  });

  it("says when an architecture's graph is not written and llama's stands in", () => {
    const e = ok(estimateMemory({ ...shapes.llama!, architecture: "starcoder2" }, base));
    expect(e.notes.join(" ")).toMatch(/starcoder2 estimated with llama's graph/);
  });
});

describe("estimateForModel", () => {
  const defaults = { ctxSize: 4096, parallel: 1, batchSize: 2048, ubatchSize: 512, flashAttn: "on", loadMode: "mmap", gpuLayers: 99 };
  const row = (over: Partial<EstimateModel>): EstimateModel => ({
    name: "m1", shape: JSON.stringify(shapes.llama), ctxSize: null, contextLength: null, parallel: null, batchSize: null, ubatchSize: null,
    flashAttn: null, loadMode: null, gpuLayers: null, cacheRamMiB: null, extraFlags: "[]", ...over,
  });

  it("falls back to the global defaults and reads the cache types from the extra flags", () => {
    const viaRow = ok(estimateForModel(row({ ctxSize: 8192, extraFlags: JSON.stringify([{ flag: "--cache-type-k", value: "q8_0" }, { flag: "--cache-type-v", value: "q8_0" }]) }), defaults));
    const direct = ok(estimateMemory(shapes.llama!, { ...base, ctxSize: 8192, cacheTypeK: "q8_0", cacheTypeV: "q8_0", cacheRamMiB: null }));
    expect(viaRow).toEqual(direct);
  });

  it("charges a model on the default context for its trained context when that is smaller, and says so", () => {
    const big = { ...defaults, ctxSize: 32768 };
    const capped = ok(estimateForModel(row({ contextLength: 4096 }), big));
    const at4096 = ok(estimateMemory(shapes.llama!, { ...base, ctxSize: 4096, cacheRamMiB: null }));
    expect(capped.kvCacheBytes).toBe(at4096.kvCacheBytes);
    expect(capped.totalBytes).toBe(at4096.totalBytes);
    expect(capped.notes[0]).toBe("context 4096: the model's own context (4096) is below the default 32768");
    // An explicit size is charged as given, with no note.
    const explicit = ok(estimateForModel(row({ contextLength: 4096, ctxSize: 8192 }), big));
    expect(explicit.kvCacheBytes).toBe(2 * at4096.kvCacheBytes);
    expect(explicit.notes.join(" ")).not.toMatch(/own context/);
  });

  it("has no estimate without a stored shape, and says to discover again on the host", () => {
    expect(estimateForModel(row({ shape: null }), defaults, "mac-studio")).toEqual({
      unavailable: expect.stringMatching(/no memory estimate for m1: its shape was never read; run discovery again on mac-studio .*updated on mac-studio/),
    });
    expect(estimateForModel(row({ shape: "{" }), defaults)).toEqual({ unavailable: expect.stringMatching(/not JSON/) });
    expect(estimateForModel(row({ shape: JSON.stringify({ version: 9 }) }), defaults)).toEqual({ unavailable: expect.stringMatching(/another version/) });
  });

  it("parses a stored shape once per text; the shape it shares cannot be changed under the next estimate", () => {
    const text = JSON.stringify(shapes.llama);
    const a = parseStoredShape({ name: "m1", shape: text });
    const b = parseStoredShape({ name: "m2", shape: text });
    expect(b).toBe(a);
    expect(a).toEqual(shapes.llama);
    expect(() => ((a as ModelShape).heads as number[]).push(1)).toThrow(TypeError);
    expect(() => ((a as { layers: number }).layers = 1)).toThrow(TypeError);
    expect(estimateForModel(row({ shape: text }), defaults)).toEqual(estimateForModel(row({ shape: text }), defaults));
    // Another text (discovery read the file again): parsed anew.
    expect(parseStoredShape({ name: "m1", shape: JSON.stringify({ ...shapes.llama, contextLength: 1024 }) })).toMatchObject({ contextLength: 1024 });
  });

  it("names the model when its settings cannot run", () => {
    expect(estimateForModel(row({ flashAttn: "off", extraFlags: [{ flag: "--cache-type-v", value: "q4_0" }] }), defaults)).toEqual({
      unavailable: expect.stringMatching(/^no memory estimate for m1: a quantized V cache/),
    });
  });
});
