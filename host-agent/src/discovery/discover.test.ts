/**
 * The agent's discovery on model folders laid out as people keep them: split
 * sets whole and broken, links that go nowhere or round in circles, files
 * outside the roots, two revisions of one Hugging Face cache repository, and
 * a hostile header. Real files in a temp folder; nothing dropped silently.
 */
import { copyFile, mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { writeSparseStringArray } from "../gguf/hostile-files.ts";
import { writeTinyModel, writeTinyModelSplit } from "../gguf/tiny-model.ts";
import { writeGguf } from "../gguf/writer.ts";
import { discoverModels } from "./discover.ts";

const TINY_PARAMS = 115_520;
let base: string;
let root: string;

beforeEach(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), "synapse-discovery-"));
  root = path.join(base, "models");
  await mkdir(root);
});
afterEach(() => rm(base, { recursive: true, force: true }));

const byName = (infos: Awaited<ReturnType<typeof discoverModels>>) => new Map(infos.map((i) => [path.basename(i.path), i]));

describe("split sets", () => {
  it("reports a complete set once, as its first part, with size and parameters of every part", async () => {
    const parts = await writeTinyModelSplit(path.join(root, "small"), 3);
    const found = await discoverModels([root]);
    expect(found).toHaveLength(1);
    const sizes = await Promise.all(parts.map((p) => stat(p).then((s) => s.size)));
    expect(found[0]).toMatchObject({ path: parts[0], splitCount: 3, architecture: "llama", name: "synapse-tiny", parameterCount: TINY_PARAMS, error: null });
    expect(found[0]?.sizeBytes).toBe(sizes.reduce((a, b) => a + b, 0));
  });

  it("reports an incomplete set with the parts it lacks, instead of adding it", async () => {
    const [first, second] = await writeTinyModelSplit(path.join(root, "small"), 2);
    await rm(second!);
    const found = await discoverModels([root]);
    expect(found).toHaveLength(1);
    expect(found[0]?.path).toBe(first);
    expect(found[0]?.error).toBe(`incomplete split set: part 2 (small-00002-of-00002.gguf) of 2 missing from ${root}; llama-server needs every part to load it`);
  });

  it("reports a lone later part as a set whose first part is missing", async () => {
    const [first, second] = await writeTinyModelSplit(path.join(root, "small"), 2);
    await rm(first!);
    const found = await discoverModels([root]);
    expect(found.map((f) => [f.path, f.error])).toEqual([[second, "part 2 of a split set of 2 whose first part is missing: part 1 (small-00001-of-00002.gguf)"]]);
  });

  it("reports a part renamed out of llama.cpp's naming, which llama-server could not complete", async () => {
    const [first] = await writeTinyModelSplit(path.join(root, "small"), 2);
    await copyFile(first!, path.join(root, "renamed.gguf"));
    const renamed = byName(await discoverModels([root])).get("renamed.gguf");
    expect(renamed?.error).toMatch(/header says it is part 1 of a split set of 2, but its name does not end in -00001-of-00002\.gguf/);
  });
});

describe("links", () => {
  it("reports a dangling link with where it points", async () => {
    await symlink("../elsewhere/gone.gguf", path.join(root, "dangling.gguf"));
    const found = await discoverModels([root]);
    expect(found.map((f) => [path.basename(f.path), f.error])).toEqual([["dangling.gguf", "broken link: points to ../elsewhere/gone.gguf, which does not exist"]]);
  });

  it("reports a symlink loop", async () => {
    await symlink("b.gguf", path.join(root, "a.gguf"));
    await symlink("a.gguf", path.join(root, "b.gguf"));
    const found = byName(await discoverModels([root]));
    expect(found.get("a.gguf")?.error).toBe("symlink loop: the link to b.gguf never reaches a file");
    expect(found.get("b.gguf")?.error).toBe("symlink loop: the link to a.gguf never reaches a file");
  });

  it("reports a link that leaves the model roots instead of dropping it", async () => {
    const outside = path.join(base, "outside.gguf");
    await writeTinyModel(outside);
    await symlink(outside, path.join(root, "escape.gguf"));
    const found = await discoverModels([root]);
    expect(found).toHaveLength(1);
    expect(found[0]?.error).toMatch(new RegExp(`^links to ${outside.replace(/[.]/g, "\\.")}, outside the model roots`));
  });

  it("scans a folder reached twice (a link back up the tree) once", async () => {
    await writeTinyModel(path.join(root, "tiny.gguf"));
    await symlink(".", path.join(root, "again"));
    expect((await discoverModels([root])).map((f) => path.basename(f.path))).toEqual(["tiny.gguf"]);
  });
});

describe("model roots", () => {
  it("reports a model root that does not exist, saying how to create it, and scans the others", async () => {
    await writeTinyModel(path.join(root, "tiny.gguf"));
    const missing = path.join(base, "no-such-folder");
    const found = await discoverModels([missing, root]);
    expect(found.map((f) => [path.basename(f.path), f.error])).toEqual([
      ["tiny.gguf", null], // entries come sorted by path: <base>/models/… before <base>/no-such-folder
      ["no-such-folder", `this model folder does not exist: create it (mkdir -p ${missing}) and put .gguf files in it`],
    ]);
  });
});

describe("Hugging Face cache", () => {
  /** `models--org--Repo-GGUF` with two snapshots of the same file; refs/main names `mainCommit`. */
  async function twoRevisions(mainCommit: string, otherCommit: string) {
    const repo = path.join(root, "models--org--Tiny-GGUF");
    await mkdir(path.join(repo, "blobs"), { recursive: true });
    await mkdir(path.join(repo, "refs"), { recursive: true });
    await writeFile(path.join(repo, "refs", "main"), mainCommit); // no newline, as huggingface_hub writes it
    const files: Record<string, string> = {};
    for (const [commit, blob, name] of [[mainCommit, "b1", "rev-main"], [otherCommit, "b2", "rev-old"]] as const) {
      await writeTinyModel(path.join(repo, "blobs", blob), { name });
      await mkdir(path.join(repo, "snapshots", commit), { recursive: true });
      files[commit] = path.join(repo, "snapshots", commit, "Tiny-F32.gguf");
      await symlink(`../../blobs/${blob}`, files[commit]!);
    }
    return files;
  }

  it("names the revision each snapshot file lies in and the refs that name it", async () => {
    const files = await twoRevisions("1111111aaaa", "2222222bbbb");
    const found = await discoverModels([root]);
    expect(found.map((f) => [f.path, f.revision])).toEqual([
      [files["1111111aaaa"], { commit: "1111111aaaa", refs: ["main"] }],
      [files["2222222bbbb"], { commit: "2222222bbbb", refs: [] }],
    ]);
  });

  it("groups a split set kept as links into blobs, under the snapshot's names", async () => {
    const repo = path.join(root, "models--org--Split-GGUF");
    await mkdir(path.join(repo, "blobs"), { recursive: true });
    const snap = path.join(repo, "snapshots", "abc1234", "Q4");
    await mkdir(snap, { recursive: true });
    const parts = await writeTinyModelSplit(path.join(repo, "blobs", "tmp"), 2);
    for (const [i, p] of parts.entries()) {
      await copyFile(p, path.join(repo, "blobs", `sha${i}`));
      await rm(p);
      await symlink(`../../../blobs/sha${i}`, path.join(snap, `x-0000${i + 1}-of-00002.gguf`));
    }
    const found = await discoverModels([root]);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ path: path.join(snap, "x-00001-of-00002.gguf"), splitCount: 2, parameterCount: TINY_PARAMS, error: null, revision: { commit: "abc1234", refs: [] } });
  });
});

describe("hostile headers", () => {
  it("refuses a sparse file claiming 30 million strings at once, and still lists the good files", async () => {
    await writeSparseStringArray(path.join(root, "sparse.gguf"), 30_000_000);
    await writeTinyModel(path.join(root, "tiny.gguf"));
    const found = byName(await discoverModels([root]));
    expect(found.get("sparse.gguf")?.error).toMatch(/claims 30000000 items .* sparse or incompletely downloaded/);
    expect(found.get("tiny.gguf")).toMatchObject({ error: null, parameterCount: TINY_PARAMS });
  });

  it("refuses a file whose split header disagrees with its name", async () => {
    await writeGguf(path.join(root, "odd-00001-of-00002.gguf"), { "split.no": { type: "u16", value: 0 }, "split.count": { type: "u16", value: 3 } }, [{ name: "a", dims: [1], data: new Float32Array(1) }]);
    await writeGguf(path.join(root, "odd-00002-of-00002.gguf"), { "split.no": { type: "u16", value: 1 }, "split.count": { type: "u16", value: 3 } }, [{ name: "b", dims: [1], data: new Float32Array(1) }]);
    const found = await discoverModels([root]);
    expect(found.map((f) => f.error)).toEqual(["the file names say 2 parts but the first part's header says split.count 3"]);
  });
});
