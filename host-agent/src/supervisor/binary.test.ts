/**
 * Finding llama-server on a machine that has none, per platform: the error
 * names the way that works there (Linux: `npm run llama:build` and its
 * packages; macOS: Homebrew), and a finished `npm run llama:build` is found
 * without any setting. Real files in a temp folder.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findLlamaServer, llamaBuildCacheDir } from "./binary.ts";

let dir: string;
let emptyPath: string;
let cache: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-binary-"));
  emptyPath = path.join(dir, "bin");
  cache = path.join(dir, "cache");
  await mkdir(emptyPath);
  await mkdir(cache);
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function fakeBuild(name: string, finished: boolean): Promise<string> {
  const bin = path.join(cache, name, "build", "bin", "llama-server");
  await mkdir(path.dirname(bin), { recursive: true });
  await writeFile(bin, "#!/bin/sh\necho 'version: 1 (abcdef0)'\n");
  await chmod(bin, 0o755);
  if (finished) await writeFile(path.join(cache, name, ".synapse-build-complete"), "");
  return bin;
}

describe("llama-server not found", () => {
  it("on Linux names npm run llama:build and the packages it needs, not Homebrew", async () => {
    const err = await findLlamaServer(null, emptyPath, cache, "linux").then(() => null, (e: Error) => e);
    expect(err?.message).toContain("llama-server not found");
    expect(err?.message).toContain("npm run llama:build");
    expect(err?.message).toContain("sudo apt-get install cmake g++ git openssl");
    expect(err?.message).toContain(cache);
    expect(err?.message).not.toContain("brew install");
  });

  it("on macOS names brew install llama.cpp, not the source build", async () => {
    const err = await findLlamaServer(null, emptyPath, cache, "darwin").then(() => null, (e: Error) => e);
    expect(err?.message).toContain("brew install llama.cpp");
    expect(err?.message).not.toContain("llama:build");
  });

  it("finds a finished npm run llama:build in the cache, and not an unfinished one", async () => {
    await fakeBuild("llama-server-unfinished", false);
    await expect(findLlamaServer(null, emptyPath, cache, "linux")).rejects.toThrow(/not found/);
    const bin = await fakeBuild("llama-server-80fb11ac73e6", true);
    expect((await findLlamaServer(null, emptyPath, cache, "linux")).path).toBe(bin);
  });

  it("uses the build script's cache folder", () => {
    expect(llamaBuildCacheDir({ SYNAPSE_CACHE_DIR: "/c" })).toBe("/c");
    expect(llamaBuildCacheDir({ XDG_CACHE_HOME: "/x", HOME: "/h" })).toBe("/x/synapse");
    expect(llamaBuildCacheDir({ HOME: "/h" })).toBe("/h/.cache/synapse");
  });
});

describe("llama-server on PATH", () => {
  async function binIn(folder: string, mode: number): Promise<string> {
    const bin = path.join(dir, folder, "llama-server");
    await mkdir(path.dirname(bin), { recursive: true });
    await writeFile(bin, "#!/bin/sh\necho 'version: 1 (abcdef0)'\n");
    await chmod(bin, mode);
    return bin;
  }

  it("takes the first folder on PATH that has an executable one, as a shell does: before later folders and before the build cache", async () => {
    const notExecutable = await binIn("a", 0o644);
    const first = await binIn("b", 0o755);
    const second = await binIn("c", 0o755);
    await fakeBuild("llama-server-1", true);
    const envPath = [path.join(dir, "missing"), path.dirname(notExecutable), path.dirname(first), path.dirname(second)].join(path.delimiter);
    expect((await findLlamaServer(null, envPath, cache, "linux")).path).toBe(first);
    // The same folders in the other order: the other one.
    expect((await findLlamaServer(null, [path.dirname(second), path.dirname(first)].join(path.delimiter), cache, "linux")).path).toBe(second);
  });

  it("passes over a folder whose llama-server is not executable, and then finds the build cache's", async () => {
    const notExecutable = await binIn("a", 0o644);
    const built = await fakeBuild("llama-server-1", true);
    expect((await findLlamaServer(null, path.dirname(notExecutable), cache, "linux")).path).toBe(built);
  });
});
