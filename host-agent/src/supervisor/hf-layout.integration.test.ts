/**
 * Models kept in the Hugging Face hub cache, as `huggingface-cli download`
 * leaves them: `models--org--name/snapshots/<rev>/<file>.gguf` is a relative
 * symlink to `../../blobs/<sha256>`, a file with no extension. Discovery must
 * find the snapshot file and a real llama-server must start from it, given
 * the path as the registry names it (what `ps`, the log and its /v1/models
 * show; a split set's later parts are found by name next to the first), with
 * every part checked to resolve inside the model roots at each start.
 */
import { cp, mkdir, readFile, rm, symlink } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentError } from "../protocol.ts";
import { agentOptions, AgentPool, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { hfRepo, hfTinyModelSplit } from "../../test/harness/hf-cache.ts";
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

/** The argv of a running process as the kernel has it. */
async function argvOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").slice(0, -1);
}

/** The `id`s llama-server's own /v1/models lists. */
async function modelIds(port: number): Promise<string[]> {
  const body = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as { data: { id: string }[] };
  return body.data.map((m) => m.id);
}

async function startRefusal(p: Promise<unknown>): Promise<AgentError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(AgentError);
  return err as AgentError;
}

describe("Hugging Face cache layout", () => {
  it("discover lists the snapshot path (not the blob) with its metadata", async () => {
    const agent = pool.make(agentOptions(dirs, llamaServerBin()));
    const found = await agent.call("discover", {});
    expect(found.map((f) => f.path)).toEqual([snapshotFile]);
    expect(found[0]).toMatchObject({ architecture: "llama", name: "hf-tiny", quantization: "F32", contextLength: 256, error: null });
  });

  it("a real llama-server starts from the snapshot path and shows that path, not the blob hash, in ps, its log and /v1/models", async () => {
    const agent = pool.make(agentOptions(dirs, llamaServerBin()));
    const port = await freePort();
    const status = await agent.call("start", { spec: specFor("hf-tiny", snapshotFile, port) });
    expect(status).toMatchObject({ state: "ready", port });
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    const argv = await argvOf(status.pid!);
    expect(argv[argv.indexOf("--model") + 1]).toBe(snapshotFile);
    expect(argv.join(" ")).not.toContain(BLOB);
    expect(await modelIds(port)).toEqual([snapshotFile]);
    const logs = (await agent.call("logs", { id: "hf-tiny", lines: 400 })).lines.join("\n");
    expect(logs).toContain(snapshotFile);
    expect(logs).not.toContain(blobFile);
    await agent.call("stop", { id: "hf-tiny", graceMs: 2000 });
  });
});

describe("a split set in the Hugging Face cache layout", () => {
  // Its own model root, so the single-file tests above see only their model.
  let dirs: TestDirs;
  beforeAll(async () => {
    dirs = await testDirs("synapse-hf-split-");
  });
  afterAll(() => dirs.cleanup());

  it("starts from the first part's snapshot path and answers", async () => {
    const r = await hfRepo(dirs.modelRoot, "models--synapse--split-GGUF", "5e6f7a8b");
    const set = await hfTinyModelSplit(r, "Q4/x", 2, { name: "hf-split" });
    const agent = pool.make(agentOptions(dirs, llamaServerBin()));
    const found = await agent.call("discover", {});
    expect(found).toEqual(expect.arrayContaining([expect.objectContaining({ path: set.paths[0], splitCount: 2, error: null })]));

    const port = await freePort();
    const status = await agent.call("start", { spec: specFor("hf-split", set.paths[0]!, port) });
    expect(status).toMatchObject({ state: "ready", port });
    const argv = await argvOf(status.pid!);
    expect(argv[argv.indexOf("--model") + 1]).toBe(set.paths[0]);
    expect(await modelIds(port)).toEqual([set.paths[0]]);
    const reply = await fetch(`http://127.0.0.1:${port}/completion`, { method: "POST", body: JSON.stringify({ prompt: "hello", n_predict: 4 }) });
    expect(reply.status).toBe(200);
    expect(((await reply.json()) as { tokens_predicted: number }).tokens_predicted).toBeGreaterThan(0);
    await agent.call("stop", { id: "hf-split", graceMs: 2000 });
  });

  it("refuses to start when a part's link points outside the model roots, naming the part and where it points, and spawns nothing", async () => {
    const r = await hfRepo(dirs.modelRoot, "models--synapse--swapped-GGUF", "9a0b1c2d");
    const set = await hfTinyModelSplit(r, "Q4/y", 2, { name: "hf-swapped" });
    const agent = pool.make(agentOptions(dirs, llamaServerBin()));
    const port = await freePort();
    // Starts as laid out; then part 2's link is swapped to a copy outside the roots, and the next start is refused.
    expect(await agent.call("start", { spec: specFor("hf-swapped", set.paths[0]!, port) })).toMatchObject({ state: "ready" });
    const stopped = await agent.call("stop", { id: "hf-swapped", graceMs: 2000 });

    const outside = path.join(dirs.root, "elsewhere", "blob-part-2");
    await mkdir(path.dirname(outside), { recursive: true });
    await cp(set.blobs[1]!, outside);
    await rm(set.paths[1]!);
    await symlink(path.relative(path.dirname(set.paths[1]!), outside), set.paths[1]!);

    const err = await startRefusal(agent.call("start", { spec: specFor("hf-swapped", set.paths[0]!, port) }));
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.message).toBe(
      `spec.modelPath: part 2 of 2 of the split set: ${set.paths[1]} resolves to ${outside}, which is outside the model roots (${dirs.modelRoot}); move the file under one of them, or add its folder to SYNAPSE_MODEL_ROOTS where this host's agent reads it (for the local host the app's environment, then restart the app; on an ssh host scripts/ssh-wrapper.conf, read when its agent next starts)`,
    );
    expect(err.issues).toEqual([{ path: "spec.modelPath", message: expect.stringContaining(set.paths[1]!) }]);
    // Still the stopped run: no new process was spawned.
    expect((await agent.call("status", {})).find((s) => s.id === "hf-swapped")).toMatchObject({ state: "stopped", pid: stopped.pid });
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
  });
});
