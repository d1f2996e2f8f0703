/**
 * `checkModelPath` through the agent object: the paths a user might save
 * (outside the roots, a folder named .gguf, a link out of the roots, a
 * missing file, a text file, half a split set) each get the problem a start
 * would report, and a good path gets none. Real files in a temp folder.
 */
import { mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import { writeTinyModelSplit } from "../gguf/tiny-model.ts";
import type { HostAgent } from "../agent.ts";
import { AGENT_FEATURES, PROTOCOL_VERSION } from "../protocol.ts";

let dirs: TestDirs;
let agent: HostAgent;
const pool = new AgentPool();

beforeAll(async () => {
  dirs = await testDirs("synapse-check-path-");
  agent = pool.make(agentOptions(dirs, standIns.recordsSpawn));
  await tinyModel(dirs.modelRoot, "good.gguf");
  await tinyModel(dirs.root, "outside.gguf");
  await mkdir(path.join(dirs.modelRoot, "dir.gguf"));
  await symlink(path.join(dirs.root, "outside.gguf"), path.join(dirs.modelRoot, "escape.gguf"));
  await writeFile(path.join(dirs.modelRoot, "text.gguf"), "not a model");
  await writeTinyModelSplit(path.join(dirs.modelRoot, "whole"), 2);
  const [, half2] = await writeTinyModelSplit(path.join(dirs.modelRoot, "half"), 2);
  await rm(half2!);
  // A set whose second part is a link out of the roots: a start refuses it, so saving says so.
  const [, out2] = await writeTinyModelSplit(path.join(dirs.modelRoot, "leaky"), 2);
  await rename(out2!, path.join(dirs.root, "leaky-part-2"));
  await symlink(path.join(dirs.root, "leaky-part-2"), out2!);
  // The first part of a set renamed off its split name: llama.cpp reads split.count and cannot find part 2.
  const [renamed1] = await writeTinyModelSplit(path.join(dirs.modelRoot, "renamed"), 2);
  await rename(renamed1!, path.join(dirs.modelRoot, "renamed.gguf"));
  // A set whose second part is not GGUF.
  const [, broken2] = await writeTinyModelSplit(path.join(dirs.modelRoot, "broken"), 2);
  await writeFile(broken2!, "not a model either");
});
afterAll(async () => {
  await pool.stopEverything();
  await dirs.cleanup();
});

const problemOf = async (p: string) => (await agent.call("checkModelPath", { path: p })).problem;

describe("checkModelPath", () => {
  it("is named in hello's features", async () => {
    expect(AGENT_FEATURES).toContain("check-model-path");
    expect((await agent.call("hello", { protocolVersion: PROTOCOL_VERSION })).features).toContain("check-model-path");
  });

  it("finds nothing wrong with a good file or a whole split set", async () => {
    expect(await problemOf(path.join(dirs.modelRoot, "good.gguf"))).toBeNull();
    expect(await problemOf(path.join(dirs.modelRoot, "whole-00001-of-00002.gguf"))).toBeNull();
  });

  it.each([
    ["outside the roots", () => path.join(dirs.root, "outside.gguf"), /is outside the model roots/],
    ["a folder named .gguf", () => path.join(dirs.modelRoot, "dir.gguf"), /dir\.gguf is not a regular file/],
    ["a link that escapes the roots", () => path.join(dirs.modelRoot, "escape.gguf"), /resolves to .*outside\.gguf, which is outside the model roots/],
    ["a missing file", () => path.join(dirs.modelRoot, "missing.gguf"), /missing\.gguf does not exist/],
    ["a file that is not GGUF", () => path.join(dirs.modelRoot, "text.gguf"), /not a GGUF file/],
    ["half a split set", () => path.join(dirs.modelRoot, "half-00001-of-00002.gguf"), /^incomplete split set: part 2 \(half-00002-of-00002\.gguf\) of 2 missing/],
    ["a set with a part linked out of the roots", () => path.join(dirs.modelRoot, "leaky-00001-of-00002.gguf"), /^part 2 of 2 of the split set: .*leaky-00002-of-00002\.gguf resolves to .*leaky-part-2, which is outside the model roots/],
    ["a later part of a set", () => path.join(dirs.modelRoot, "whole-00002-of-00002.gguf"), /part 2 of a split set; give the first part, .*whole-00001-of-00002\.gguf/],
    ["a set's first part renamed off its split name", () => path.join(dirs.modelRoot, "renamed.gguf"), /its header says it is part 1 of a split set of 2, but its name does not end in -00001-of-00002\.gguf/],
    ["a set whose second part is not GGUF", () => path.join(dirs.modelRoot, "broken-00001-of-00002.gguf"), /^part 2 of 2 of this split set cannot be read: .*not a GGUF file/],
  ])("names the problem with %s", async (_what, p, expected) => {
    expect(await problemOf(p())).toMatch(expected);
  });

  it("describes a good file or split set as discover does (architecture, parameters, quantization, context, size)", async () => {
    const found = await agent.call("discover", {});
    for (const file of ["good.gguf", "whole-00001-of-00002.gguf"]) {
      const p = path.join(dirs.modelRoot, file);
      const entry = found.find((e) => e.path === p)!;
      const answer = await agent.call("checkModelPath", { path: p });
      expect(answer.summary).toEqual({ sizeBytes: entry.sizeBytes, architecture: "llama", name: entry.name, parameterCount: entry.parameterCount, quantization: entry.quantization, contextLength: 256 });
      expect(answer.summary?.parameterCount).toBeGreaterThan(0);
      expect(answer.shape).toEqual(entry.shape);
    }
    // A set's size and parameters cover both parts, as discover counts them.
    const good = (await agent.call("checkModelPath", { path: path.join(dirs.modelRoot, "good.gguf") })).summary!;
    const whole = (await agent.call("checkModelPath", { path: path.join(dirs.modelRoot, "whole-00001-of-00002.gguf") })).summary!;
    expect(whole.parameterCount).toBe(good.parameterCount);
  });
});
