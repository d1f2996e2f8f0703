import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentError, serverSpecSchema } from "../protocol.ts";
import { checkModelSet, resolveModelPath, specHash } from "./spec-check.ts";

let dir: string;
let root: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-spec-"));
  root = path.join(dir, "models");
  await mkdir(path.join(root, "sub.gguf"), { recursive: true });
  await writeFile(path.join(root, "ok.gguf"), "x");
  await writeFile(path.join(root, "ok.bin"), "x");
  await writeFile(path.join(dir, "outside.gguf"), "x");
  await symlink(path.join(dir, "outside.gguf"), path.join(root, "escape.gguf"));
  await symlink(path.join(root, "ok.gguf"), path.join(root, "link.gguf"));
  // Hugging Face cache layout: snapshot files are relative symlinks to extension-less blobs.
  const repo = path.join(root, "hub", "models--org--tiny");
  await mkdir(path.join(repo, "blobs"), { recursive: true });
  await mkdir(path.join(repo, "snapshots", "abc123"), { recursive: true });
  await writeFile(path.join(repo, "blobs", "9f86d081884c7d65"), "x");
  await symlink("../../blobs/9f86d081884c7d65", path.join(repo, "snapshots", "abc123", "tiny-Q4_K_M.gguf"));
  await symlink("../../blobs/missing", path.join(repo, "snapshots", "abc123", "dangling.gguf"));
  await symlink("../../blobs/9f86d081884c7d65", path.join(repo, "snapshots", "abc123", "no-extension"));
  // A link outside the roots pointing in: the path as given is what the spec names, so it is refused.
  await symlink(path.join(root, "ok.gguf"), path.join(dir, "in-from-outside.gguf"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function rejection(p: string): Promise<AgentError> {
  try {
    await resolveModelPath(p, [root]);
  } catch (e) {
    return e as AgentError;
  }
  throw new Error(`expected ${p} to be rejected`);
}

describe("resolveModelPath", () => {
  it("accepts a .gguf inside a root, resolving symlinks", async () => {
    expect(await resolveModelPath(path.join(root, "ok.gguf"), [root])).toBe(path.join(root, "ok.gguf"));
    expect(await resolveModelPath(path.join(root, "link.gguf"), [root])).toBe(path.join(root, "ok.gguf"));
  });
  it("accepts a Hugging Face snapshot file whose blob has no .gguf extension", async () => {
    const snap = path.join(root, "hub", "models--org--tiny", "snapshots", "abc123", "tiny-Q4_K_M.gguf");
    expect(await resolveModelPath(snap, [root])).toBe(path.join(root, "hub", "models--org--tiny", "blobs", "9f86d081884c7d65"));
  });
  it.each([
    ["outside the roots", () => path.join(dir, "outside.gguf"), /outside the model roots/],
    ["a symlink out of the roots", () => path.join(root, "escape.gguf"), /outside the model roots/],
    ["..", () => `${root}/../outside.gguf`, /must not contain '\.\.'/],
    ["not .gguf", () => path.join(root, "ok.bin"), /must name a \.gguf file/],
    ["missing", () => path.join(root, "nope.gguf"), /does not exist/],
    ["a directory", () => path.join(root, "sub.gguf"), /is not a regular file/],
    ["relative", () => "models/ok.gguf", /must be an absolute path/],
    ["a link outside the roots into them", () => path.join(dir, "in-from-outside.gguf"), /is outside the model roots/],
    ["a snapshot link to a missing blob", () => path.join(root, "hub", "models--org--tiny", "snapshots", "abc123", "dangling.gguf"), /does not exist/],
    ["a snapshot link not named .gguf", () => path.join(root, "hub", "models--org--tiny", "snapshots", "abc123", "no-extension"), /must name a \.gguf file/],
  ])("rejects %s naming spec.modelPath", async (_name, p, message) => {
    const err = await rejection(p());
    expect(err).toBeInstanceOf(AgentError);
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.message).toMatch(/^spec\.modelPath: /);
    expect(err.message).toMatch(message);
    expect(err.issues?.[0]?.path).toBe("spec.modelPath");
  });
});

describe("checkModelSet", () => {
  // A split set in the Hugging Face layout: snapshot parts are relative links into blobs/.
  let snap: string;
  beforeAll(async () => {
    const repo = path.join(root, "hub", "models--org--split");
    snap = path.join(repo, "snapshots", "rev1", "Q4");
    await mkdir(path.join(repo, "blobs"), { recursive: true });
    await mkdir(snap, { recursive: true });
    for (const b of ["b1", "b2"]) await writeFile(path.join(repo, "blobs", b), "x");
    await symlink("../../../blobs/b1", path.join(snap, "s-00001-of-00002.gguf"));
    await symlink("../../../blobs/b2", path.join(snap, "s-00002-of-00002.gguf"));
    await symlink("../../../blobs/b1", path.join(snap, "esc-00001-of-00002.gguf"));
    await symlink(path.join(dir, "outside.gguf"), path.join(snap, "esc-00002-of-00002.gguf"));
    await symlink("../../../blobs/b1", path.join(snap, "gap-00001-of-00003.gguf"));
    await symlink("../../../blobs/b2", path.join(snap, "gap-00003-of-00003.gguf"));
  });

  async function refusal(p: string): Promise<AgentError> {
    const err = await checkModelSet(p, [root]).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).code).toBe("BAD_REQUEST");
    expect((err as AgentError).issues?.[0]?.path).toBe("spec.modelPath");
    return err as AgentError;
  }

  it("returns the path as named (not the blob) for a single file and for a whole split set", async () => {
    const single = path.join(root, "hub", "models--org--tiny", "snapshots", "abc123", "tiny-Q4_K_M.gguf");
    expect(await checkModelSet(single, [root])).toBe(single);
    expect(await checkModelSet(path.join(snap, "s-00001-of-00002.gguf"), [root])).toBe(path.join(snap, "s-00001-of-00002.gguf"));
  });
  it("refuses a set whose other part points outside the roots, naming the part and its target", async () => {
    const err = await refusal(path.join(snap, "esc-00001-of-00002.gguf"));
    expect(err.message).toBe(`spec.modelPath: part 2 of 2 of the split set: ${path.join(snap, "esc-00002-of-00002.gguf")} resolves to ${path.join(dir, "outside.gguf")}, which is outside the model roots (${root}); move the file under one of them, or add its folder to SYNAPSE_MODEL_ROOTS where this host's agent reads it (for the local host the app's environment, then restart the app; on an ssh host scripts/ssh-wrapper.conf, read when its agent next starts)`);
  });
  it("refuses a set with a part missing, naming it", async () => {
    expect((await refusal(path.join(snap, "gap-00001-of-00003.gguf"))).message).toBe(`spec.modelPath: part 2 of 3 of the split set: ${path.join(snap, "gap-00002-of-00003.gguf")} does not exist`);
  });
  it("reports the named file's own fault as resolveModelPath does", async () => {
    expect((await refusal(path.join(root, "escape.gguf"))).message).toMatch(/^spec\.modelPath: .*escape\.gguf resolves to .*outside\.gguf, which is outside the model roots/);
  });
});

describe("specHash", () => {
  it("is stable across key order and changes with content", () => {
    const base = { id: "a", modelPath: "/m/a.gguf", port: 8080, ctxSize: 1, gpuLayers: 0, threads: 1, batchSize: 1, ubatchSize: 1, flashAttn: "off", loadMode: "mmap", parallel: 1, readinessDeadlineMs: 1000, stopGraceMs: 0 } as const;
    const a = serverSpecSchema.parse(base);
    const b = serverSpecSchema.parse(Object.fromEntries(Object.entries(base).reverse()));
    expect(specHash(a)).toBe(specHash(b));
    expect(specHash(serverSpecSchema.parse({ ...base, port: 8081 }))).not.toBe(specHash(a));
  });
});
