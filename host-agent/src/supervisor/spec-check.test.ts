import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentError, serverSpecSchema } from "../protocol.ts";
import { resolveModelPath, specHash } from "./spec-check.ts";

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

describe("specHash", () => {
  it("is stable across key order and changes with content", () => {
    const base = { id: "a", modelPath: "/m/a.gguf", port: 8080, ctxSize: 1, gpuLayers: 0, threads: 1, batchSize: 1, ubatchSize: 1, flashAttn: "off", loadMode: "mmap", parallel: 1, readinessDeadlineMs: 1000, stopGraceMs: 0 } as const;
    const a = serverSpecSchema.parse(base);
    const b = serverSpecSchema.parse(Object.fromEntries(Object.entries(base).reverse()));
    expect(specHash(a)).toBe(specHash(b));
    expect(specHash(serverSpecSchema.parse({ ...base, port: 8081 }))).not.toBe(specHash(a));
  });
});
