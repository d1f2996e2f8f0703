import { mkdtemp, rm, writeFile, readFile, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeArrayOfType, writeBigEndian, writeSparseStringArray } from "./hostile-files.ts";
import { GgufError, readGguf, readGgufSummary, summarizeGguf, type GgufArray } from "./reader.ts";
import { tinyVocabulary, writeTinyModel } from "./tiny-model.ts";
import { writeGguf } from "./writer.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-gguf-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("tiny model: write, then read back field by field", () => {
  it("round-trips header, metadata and tensor table", async () => {
    const file = path.join(dir, "tiny.gguf");
    await writeTinyModel(file);
    const size = (await stat(file)).size;
    expect(size).toBeGreaterThan(440_000);
    expect(size).toBeLessThan(500_000);

    const g = await readGguf(file);
    expect(g.version).toBe(3);
    const md = g.metadata;
    expect(md.get("general.architecture")).toBe("llama");
    expect(md.get("general.name")).toBe("synapse-tiny");
    expect(md.get("general.file_type")).toBe(0);
    expect(md.get("llama.context_length")).toBe(256);
    expect(md.get("llama.embedding_length")).toBe(64);
    expect(md.get("llama.block_count")).toBe(2);
    expect(md.get("llama.feed_forward_length")).toBe(128);
    expect(md.get("llama.attention.head_count")).toBe(4);
    expect(md.get("llama.attention.head_count_kv")).toBe(4);
    expect(md.get("llama.attention.layer_norm_rms_epsilon")).toBeCloseTo(1e-5, 10);
    expect(md.get("llama.rope.dimension_count")).toBe(16);
    expect(md.get("tokenizer.ggml.model")).toBe("llama");
    expect(md.get("tokenizer.ggml.add_bos_token")).toBe(true);
    expect(md.get("tokenizer.ggml.bos_token_id")).toBe(1);
    expect(md.get("tokenizer.ggml.eos_token_id")).toBe(2);
    expect(md.get("tokenizer.ggml.unknown_token_id")).toBe(0);

    const vocab = tinyVocabulary();
    const tokens = md.get("tokenizer.ggml.tokens") as GgufArray;
    expect(tokens.length).toBe(260);
    expect(tokens.items).toEqual(vocab.tokens);
    expect(tokens.items?.[3]).toBe("<0x00>");
    expect(tokens.items?.[259]).toBe("\u2581");
    expect((md.get("tokenizer.ggml.token_type") as GgufArray).items).toEqual(vocab.types);
    expect((md.get("tokenizer.ggml.scores") as GgufArray).items).toEqual(vocab.scores);

    expect(g.tensors).toHaveLength(3 + 2 * 9);
    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    expect(byName.get("token_embd.weight")?.dims).toEqual([64, 260]);
    expect(byName.get("output.weight")?.dims).toEqual([64, 260]);
    expect(byName.get("blk.1.ffn_down.weight")?.dims).toEqual([128, 64]);
    expect(byName.get("blk.0.ffn_up.weight")?.dims).toEqual([64, 128]);
    for (const t of g.tensors) {
      expect(t.type).toBe(0);
      expect(Number(t.offset) % 32).toBe(0);
    }

    expect(summarizeGguf(g)).toEqual({ architecture: "llama", name: "synapse-tiny", parameterCount: 115_520, quantization: "F32", contextLength: 256 });
  });

  it("is deterministic for a seed", async () => {
    const a = path.join(dir, "a.gguf");
    const b = path.join(dir, "b.gguf");
    await writeTinyModel(a, { seed: 7 });
    await writeTinyModel(b, { seed: 7 });
    expect((await readFile(a)).equals(await readFile(b))).toBe(true);
  });
});

describe("reader: summary sources and bad files", () => {
  it("prefers general.parameter_count and falls back to the dominant tensor type", async () => {
    const file = path.join(dir, "q.gguf");
    await writeGguf(file, { "general.architecture": { type: "string", value: "qwen2" }, "general.parameter_count": { type: "u64", value: 7_000_000_000n }, "qwen2.context_length": { type: "u32", value: 32768 } }, [
      { name: "a.weight", dims: [4, 4], data: new Float32Array(16) },
      { name: "n.weight", dims: [4], data: new Float32Array(4) },
    ]);
    expect(await readGgufSummary(file)).toEqual({ architecture: "qwen2", name: null, parameterCount: 7_000_000_000, quantization: "F32", contextLength: 32768 });
  });

  it("rejects a file that is not GGUF", async () => {
    const file = path.join(dir, "not.gguf");
    await writeFile(file, "this is a text file, not a model\n");
    await expect(readGguf(file)).rejects.toThrow(/not a GGUF file/);
    await expect(readGguf(file)).rejects.toBeInstanceOf(GgufError);
  });

  it("rejects a truncated file with a clear error", async () => {
    const full = await readFile(path.join(dir, "tiny.gguf"));
    const file = path.join(dir, "truncated.gguf");
    await writeFile(file, full.subarray(0, 2000));
    await expect(readGguf(file)).rejects.toThrow(/truncated GGUF file/);
    await writeFile(file, full.subarray(0, 3));
    await expect(readGguf(file)).rejects.toThrow(/not a GGUF file/);
  });

  it("bounds absurd counts instead of allocating", async () => {
    const b = Buffer.alloc(24);
    b.write("GGUF", 0, "latin1");
    b.writeUInt32LE(3, 4);
    b.writeBigUInt64LE(0n, 8);
    b.writeBigUInt64LE(1n << 60n, 16);
    const file = path.join(dir, "huge-count.gguf");
    await writeFile(file, b);
    await expect(readGguf(file)).rejects.toThrow(/metadata count .* more than the limit/);
  });

  it("names a missing file", async () => {
    await expect(readGguf(path.join(dir, "missing.gguf"))).rejects.toThrow(/missing\.gguf: cannot open/);
  });

  it("refuses a sparse file whose header claims more than the disk holds, without decoding the holes", async () => {
    // 30 million empty strings: 240 MB long, a few KB on disk. The old reader decoded every one (86 s).
    const file = path.join(dir, "sparse-strings.gguf");
    const size = await writeSparseStringArray(file, 30_000_000);
    const st = await stat(file);
    expect(st.size).toBe(size);
    expect(st.blocks * 512).toBeLessThan(1 << 20); // the file system made it sparse
    await expect(readGguf(file)).rejects.toThrow(/tokenizer\.ggml\.tokens claims 30000000 items .* bytes this 240000069-byte file stores on disk \(a sparse or incompletely downloaded file\)/);
  });

  it("refuses an array whose claimed length cannot fit in the file, before looping over it", async () => {
    const file = path.join(dir, "short-array.gguf");
    await writeArrayOfType(file, 4, 1_000_000); // a million u32 items, none written
    await expect(readGguf(file)).rejects.toThrow(/truncated GGUF file \(array general\.tags claims 1000000 items, at least 4000000 bytes, but only 0 bytes remain/);
  });

  it("refuses an unknown value type whatever the count, an empty array included", async () => {
    for (const count of [0, 3]) {
      const file = path.join(dir, `type99-${count}.gguf`);
      await writeArrayOfType(file, 99, count);
      await expect(readGguf(file)).rejects.toThrow(/unknown GGUF value type 99 for the items of general\.tags/);
    }
  });

  it("says a byte-swapped header is big-endian GGUF", async () => {
    const file = path.join(dir, "big-endian.gguf");
    await writeBigEndian(file);
    await expect(readGguf(file)).rejects.toThrow(/big-endian GGUF is not supported/);
    await expect(readGguf(file)).rejects.not.toThrow(/50331648/);
  });
});
