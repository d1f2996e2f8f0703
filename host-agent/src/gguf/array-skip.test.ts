/**
 * The reader's skip paths (arrays longer than `maxArrayItems` are passed over by their size, strings by
 * their length fields) for every GGUF value type, files cut off inside a skipped array, tensor offsets
 * past 2^53, and the read buffers it lends between files (chunk-pool.ts): reads at once never share one.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CHUNK_BYTES, pooledChunks } from "./chunk-pool.ts";
import { readGguf, type GgufArray } from "./reader.ts";
import { encodeGguf, type GgufWriteValue } from "./writer.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "synapse-skip-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** n items of each scalar type, distinct and at the type's edges, so a misread shows. */
function items(type: string, n: number): GgufWriteValue {
  const pick = <T,>(xs: T[]) => Array.from({ length: n }, (_, i) => xs[i % xs.length]!);
  switch (type) {
    case "u8": return { type: "array", itemType: "u8", value: pick([0, 1, 255, 7]) };
    case "i8": return { type: "array", itemType: "i8", value: pick([-128, 127, 0, -1]) };
    case "u16": return { type: "array", itemType: "u16", value: pick([65535, 0, 300]) };
    case "i16": return { type: "array", itemType: "i16", value: pick([-32768, 32767, -2]) };
    case "u32": return { type: "array", itemType: "u32", value: pick([4294967295, 0, 70000]) };
    case "i32": return { type: "array", itemType: "i32", value: pick([-2147483648, 2147483647, 5]) };
    case "f32": return { type: "array", itemType: "f32", value: pick([0.5, -2, 1024.25]) };
    case "f64": return { type: "array", itemType: "f64", value: pick([Math.PI, -1e300, 0]) };
    case "u64": return { type: "array", itemType: "u64", value: pick<number | bigint>([1n << 60n, 0, 123]) };
    case "i64": return { type: "array", itemType: "i64", value: pick<number | bigint>([-(1n << 62n), -1, 9]) };
    case "bool": return { type: "array", itemType: "bool", value: pick([true, false, false]) };
    case "string": return { type: "array", itemType: "string", value: pick(["", "é", "a longer token ▁w123", "x".repeat(300)]) };
  }
  throw new Error(type);
}
const TYPES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "f64", "u64", "i64", "bool", "string"];

/** Every type as a short array (kept), a long one (skipped) and a scalar, each followed by a marker key, then two tensors. */
function everyType(longItems: number): Buffer {
  const md: Record<string, GgufWriteValue> = { "general.architecture": { type: "string", value: "llama" } };
  for (const t of TYPES) {
    md[`short.${t}`] = items(t, 3);
    md[`long.${t}`] = items(t, longItems);
    md[`after.${t}`] = { type: "string", value: `marker ${t}` };
  }
  md["scalar.u64"] = { type: "u64", value: 1n << 60n };
  md["scalar.i64"] = { type: "i64", value: -5 };
  md["scalar.f64"] = { type: "f64", value: 0.125 };
  md["scalar.i16"] = { type: "i16", value: -7 };
  return encodeGguf(md, [
    { name: "a.weight", dims: [4, 2], data: new Float32Array(8) },
    { name: "b.weight", dims: [3], data: new Float32Array(3) },
  ]);
}

describe("skipping arrays of every value type", () => {
  for (const longItems of [1000, 70_000]) {
    it(`keeps short arrays, skips ${longItems}-item ones by size, and reads what follows each (${longItems === 70_000 ? "across chunks" : "within a chunk"})`, async () => {
      const p = path.join(dir, `every-${longItems}.gguf`);
      const buf = everyType(longItems);
      if (longItems === 70_000) expect(buf.length).toBeGreaterThan(3 * CHUNK_BYTES);
      await writeFile(p, buf);
      const g = await readGguf(p, { maxArrayItems: 10 });
      for (const t of TYPES) {
        const short = g.metadata.get(`short.${t}`) as GgufArray;
        const expected = (items(t, 3) as { value: unknown[] }).value.map((v) => (typeof v === "bigint" && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v));
        if (t === "f32") expect(short.items).toEqual([0.5, -2, 1024.25]);
        else expect(short.items).toEqual(expected);
        expect(g.metadata.get(`long.${t}`)).toEqual({ kind: "array", itemType: short.itemType, length: longItems, items: null });
        expect(g.metadata.get(`after.${t}`)).toBe(`marker ${t}`);
      }
      expect(g.metadata.get("scalar.u64")).toBe(1n << 60n);
      expect(g.metadata.get("scalar.i64")).toBe(-5);
      expect(g.metadata.get("scalar.f64")).toBe(0.125);
      expect(g.metadata.get("scalar.i16")).toBe(-7);
      expect(g.tensors.map((t) => [t.name, t.dims, t.offset])).toEqual([
        ["a.weight", [4, 2], 0],
        ["b.weight", [3], 32],
      ]);
    });
  }
});

describe("a file cut off inside a skipped array", () => {
  /** The byte where the items of `key` start (after its key, type, item type and length). */
  function itemsAt(buf: Buffer, key: string): number {
    return buf.indexOf(Buffer.from(key)) + key.length + 4 + 4 + 8;
  }

  for (const t of ["u8", "f32", "u64", "bool", "string"]) {
    it(`${t}: truncated, whether the cut is near the array's start or its end`, async () => {
      const whole = everyType(70_000);
      const start = itemsAt(whole, `long.${t}`);
      const end = whole.indexOf(Buffer.from(`after.${t}`)) - 8; // the next key's length field
      const p = path.join(dir, `cut-${t}.gguf`);
      for (const cut of [start + 5, Math.min(start + CHUNK_BYTES + 3, end - 1), end - 1]) {
        expect(cut).toBeGreaterThan(start);
        await writeFile(p, whole.subarray(0, cut));
        await expect(readGguf(p, { maxArrayItems: 10 })).rejects.toThrow(/truncated GGUF file/);
      }
    });
  }

  it("a string list cut inside a string, chunks in: truncated at that string", async () => {
    const whole = encodeGguf({ "tokenizer.ggml.tokens": items("string", 200_000) }, []);
    const p = path.join(dir, "cut-in-string.gguf");
    // The last 300-byte string spans the cut point (enough bytes remain for the list's claim to pass):
    // the walk stops before it and the checked path says truncated, naming it.
    const at = whole.lastIndexOf(Buffer.from("x".repeat(300)));
    expect(at).toBeGreaterThan(4 * CHUNK_BYTES);
    await writeFile(p, whole.subarray(0, at + 150));
    await expect(readGguf(p, { maxArrayItems: 10 })).rejects.toThrow(/truncated GGUF file .*tokenizer\.ggml\.tokens\[\d+\]/);
  });
});

describe("64-bit fields", () => {
  it("a tensor offset past 2^53 is kept exact as a bigint; others are numbers", async () => {
    const buf = encodeGguf({}, [
      { name: "a.weight", dims: [8], data: new Float32Array(8) },
      { name: "far.weight", dims: [8], data: new Float32Array(8) },
    ]);
    const name = Buffer.from("far.weight");
    const offsetAt = buf.indexOf(name) + name.length + 4 + 8 + 4; // n_dims, one dim, type
    buf.writeBigUInt64LE((1n << 60n) + 3n, offsetAt);
    const p = path.join(dir, "far-offset.gguf");
    await writeFile(p, buf);
    const g = await readGguf(p);
    expect(g.tensors.map((t) => t.offset)).toEqual([0, (1n << 60n) + 3n]);
  });

  it("a count past 2^53 is named exactly in the error", async () => {
    const b = Buffer.alloc(24);
    b.write("GGUF", 0, "latin1");
    b.writeUInt32LE(3, 4);
    b.writeBigUInt64LE((1n << 60n) + 1n, 8);
    const p = path.join(dir, "count-2-60.gguf");
    await writeFile(p, b);
    await expect(readGguf(p)).rejects.toThrow("tensor count is 1152921504606846977, more than the limit of 1000000");
  });
});

describe("read buffers lent between files", () => {
  it("reads at once each get their own buffer, and at most 4 are kept afterwards", async () => {
    // Files of different sizes, each several chunks of header, read all at once: a shared buffer would
    // mix one file's bytes into another's decoding.
    const files = await Promise.all(
      [40_000, 90_000, 130_000, 60_000, 110_000, 75_000].map(async (n, i) => {
        const p = path.join(dir, `at-once-${i}.gguf`);
        await writeFile(p, encodeGguf({ "general.name": { type: "string", value: `file ${i}` }, "tokenizer.ggml.tokens": items("string", n), "tokenizer.ggml.scores": items("f32", n) }, [{ name: `t${i}.weight`, dims: [2, i + 1], data: new Float32Array(2 * (i + 1)) }]));
        return { p, n, i };
      }),
    );
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(files.map((f) => readGguf(f.p, { maxArrayItems: 10 })));
      got.forEach((g, i) => {
        expect(g.metadata.get("general.name")).toBe(`file ${i}`);
        expect((g.metadata.get("tokenizer.ggml.tokens") as GgufArray).length).toBe(files[i]!.n);
        expect(g.tensors.map((t) => [t.name, t.dims])).toEqual([[`t${i}.weight`, [2, i + 1]]]);
      });
      expect(pooledChunks()).toBeLessThanOrEqual(4);
    }
    expect(pooledChunks()).toBeGreaterThan(0);
  });

  it("a read that fails gives its buffer back, and the next read is not disturbed by its bytes", async () => {
    const good = path.join(dir, "good.gguf");
    const bad = path.join(dir, "bad.gguf");
    const goodBuf = encodeGguf({ "general.name": { type: "string", value: "good" }, "tokenizer.ggml.tokens": items("string", 80_000) }, [{ name: "g.weight", dims: [2], data: new Float32Array(2) }]);
    await writeFile(good, goodBuf);
    const badBuf = encodeGguf({ "general.name": { type: "string", value: "bad" }, "tokenizer.ggml.tokens": items("string", 80_000) }, []);
    await writeFile(bad, badBuf.subarray(0, CHUNK_BYTES + 4096));
    for (let i = 0; i < 10; i++) await expect(readGguf(bad, { maxArrayItems: 10 })).rejects.toThrow(/truncated GGUF file/);
    expect(pooledChunks()).toBeGreaterThan(0);
    expect(pooledChunks()).toBeLessThanOrEqual(4);
    const g = await readGguf(good, { maxArrayItems: 10 });
    expect(g.metadata.get("general.name")).toBe("good");
    expect(g.tensors.map((t) => t.name)).toEqual(["g.weight"]);
  });
});
