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
  it.each([
    ["outside the roots", () => path.join(dir, "outside.gguf"), /outside the model roots/],
    ["a symlink out of the roots", () => path.join(root, "escape.gguf"), /outside the model roots/],
    ["..", () => `${root}/../outside.gguf`, /must not contain '\.\.'/],
    ["not .gguf", () => path.join(root, "ok.bin"), /must name a \.gguf file/],
    ["missing", () => path.join(root, "nope.gguf"), /does not exist/],
    ["a directory", () => path.join(root, "sub.gguf"), /is not a regular file/],
    ["relative", () => "models/ok.gguf", /must be an absolute path/],
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
