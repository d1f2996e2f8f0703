/**
 * Models kept in the Hugging Face hub cache, as `huggingface-cli download`
 * leaves them: `models--org--name/snapshots/<rev>/<file>.gguf` is a relative
 * symlink to `../../blobs/<sha256>`, a file with no extension. Discovery must
 * find the snapshot file and a real llama-server must start from it.
 */
import { mkdir, symlink } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort } from "../../test/harness/ports.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";

const BLOB = "4c3e0f1d2a9b8c7d6e5f40312a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";
let dirs: TestDirs;
let snapshotFile: string;
let blobFile: string;
const pool = new AgentPool();

beforeAll(async () => {
  dirs = await testDirs("synapse-hf-");
  const repo = path.join(dirs.modelRoot, "models--synapse--tiny-GGUF");
  await mkdir(path.join(repo, "blobs"), { recursive: true });
  await mkdir(path.join(repo, "snapshots", "0123abcd"), { recursive: true });
  blobFile = await tinyModel(path.join(repo, "blobs"), BLOB, { name: "hf-tiny" });
  snapshotFile = path.join(repo, "snapshots", "0123abcd", "tiny-F32.gguf");
  await symlink(`../../blobs/${BLOB}`, snapshotFile);
});
afterEach(() => pool.stopEverything());
afterAll(() => dirs.cleanup());

describe("Hugging Face cache layout", () => {
  it("discover lists the snapshot path (not the blob) with its metadata", async () => {
    const agent = pool.make(agentOptions(dirs, llamaServerBin()));
    const found = await agent.call("discover", {});
    expect(found.map((f) => f.path)).toEqual([snapshotFile]);
    expect(found[0]).toMatchObject({ architecture: "llama", name: "hf-tiny", quantization: "F32", contextLength: 256, error: null });
  });

  it("a real llama-server starts from the snapshot path and serves", async () => {
    const agent = pool.make(agentOptions(dirs, llamaServerBin()));
    const port = await freePort();
    const status = await agent.call("start", { spec: specFor("hf-tiny", snapshotFile, port) });
    expect(status).toMatchObject({ state: "ready", port });
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    // The server was handed the resolved blob, so a snapshot link swapped later cannot redirect it.
    const logs = await agent.call("logs", { id: "hf-tiny", lines: 400 });
    expect(logs.lines.join("\n")).toContain(blobFile);
    await agent.call("stop", { id: "hf-tiny", graceMs: 2000 });
  });
});
