/**
 * The reader's fast walk over long string lists (a tokenizer's 150k tokens): lengths across chunk
 * boundaries, and the same errors as the checked path for a string too long or cut off.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readGguf } from "./reader.ts";
import { encodeGguf } from "./writer.ts";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "synapse-strings-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tokens = (n: number) => Array.from({ length: n }, (_, i) => `tok-${i}-${"x".repeat(i % 23)}`);
function file(n: number): Buffer {
  return encodeGguf(
    { "general.architecture": { type: "string", value: "llama" }, "tokenizer.ggml.tokens": { type: "array", itemType: "string", value: tokens(n) } },
    [{ name: "after.weight", dims: [4, 2], data: new Float32Array(8) }],
  );
}
/** Offset of the length field of token `j` in `file(n)`. */
function lengthAt(buf: Buffer, j: number): number {
  const marker = Buffer.from(`tok-${j}-`);
  return buf.indexOf(marker) - 8;
}

describe("long string lists", () => {
  it("walks 60k strings over several chunks and reads the tensor table after them", async () => {
    const p = path.join(dir, "long.gguf");
    await writeFile(p, file(60_000)); // about 1.5 MiB of strings: several reads
    const g = await readGguf(p, { maxArrayItems: 10 });
    expect(g.metadata.get("tokenizer.ggml.tokens")).toMatchObject({ kind: "array", length: 60_000, items: null });
    expect(g.tensors.map((t) => [t.name, t.dims])).toEqual([["after.weight", [4, 2]]]);
  });

  it("refuses a string longer than the limit, naming it", async () => {
    const buf = Buffer.from(file(60_000));
    buf.writeBigUInt64LE(BigInt(5 << 20), lengthAt(buf, 41_234));
    const p = path.join(dir, "too-long.gguf");
    await writeFile(p, buf);
    await expect(readGguf(p, { maxArrayItems: 10 })).rejects.toThrow(/tokenizer\.ggml\.tokens\[41234\] length is 5242880, more than the limit of 1048576/);
    buf.writeBigUInt64LE(1n << 60n, lengthAt(buf, 41_234));
    await writeFile(p, buf);
    await expect(readGguf(p, { maxArrayItems: 10 })).rejects.toThrow(/tokenizer\.ggml\.tokens\[41234\] length is more than 2\^53/);
  });

  it("refuses a list cut off by the end of the file as truncated", async () => {
    const whole = file(60_000);
    const p = path.join(dir, "cut.gguf");
    await writeFile(p, whole.subarray(0, lengthAt(whole, 50_000) + 12));
    await expect(readGguf(p, { maxArrayItems: 10 })).rejects.toThrow(/truncated GGUF file/);
    expect((await readFile(p)).length).toBeLessThan(whole.length);
  });
});
