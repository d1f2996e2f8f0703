/**
 * A split set as llama.cpp names it, found by the agent's discovery and
 * started by a real llama-server from the path discovery reported; with a
 * part gone, discovery says which instead of offering a model that fails
 * only at start.
 */
import { rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort } from "../../test/harness/ports.ts";
import { writeTinyModelSplit } from "../gguf/tiny-model.ts";

let dirs: TestDirs;
const pool = new AgentPool();

beforeAll(async () => {
  dirs = await testDirs("synapse-split-");
});
afterEach(() => pool.stopEverything());
afterAll(() => dirs.cleanup());

describe("split GGUF sets", () => {
  it("discovery reports the whole set as one model, and a real llama-server starts it from that path", async () => {
    const parts = await writeTinyModelSplit(path.join(dirs.modelRoot, "small"), 2);
    const agent = pool.make(agentOptions(dirs, llamaServerBin()));
    const found = await agent.call("discover", {});
    expect(found).toEqual([expect.objectContaining({ path: parts[0], splitCount: 2, parameterCount: 115_520, error: null })]);

    const port = await freePort();
    const status = await agent.call("start", { spec: specFor("small", found[0]!.path, port) });
    expect(status).toMatchObject({ state: "ready", port });
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    await agent.call("stop", { id: "small", graceMs: 2000 });

    await rm(parts[1]!);
    const again = await agent.call("discover", {});
    expect(again).toEqual([expect.objectContaining({ path: parts[0], error: expect.stringMatching(/^incomplete split set: part 2 \(small-00002-of-00002\.gguf\) of 2 missing/) })]);
  });
});
