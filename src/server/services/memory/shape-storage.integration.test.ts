/**
 * Shapes kept, files not re-read: a real agent (local link) reads each model's shape at discovery and
 * when a model is saved, the real SQLite registry stores it, and estimates are computed from the row
 * alone, after the files are gone. An agent that does not send shapes (an older checkout) leaves the
 * model without an estimate, and the estimate says which host to update; discovery again fills it in.
 */
import { mkdir, rm } from "node:fs/promises";
import path from "node:path";
import { createLocalLink, silentLinkLog, type HostLink } from "synapse-host-agent/link";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readGguf } from "../../../../host-agent/src/gguf/reader";
import { shapeOfGguf } from "../../../../host-agent/src/gguf/shape";
import { writeShapedModel, writeShapedModelSplit, type ShapedModelOptions } from "../../../../host-agent/src/gguf/shaped-model";
import { tempDir } from "../../../../test/harness/temp";
import { createLinkPool, type LinkPool } from "../fleet/links";
import { testLogger } from "../fleet/testing/db";
import { addDiscoveredModels } from "../registry/discover";
import { upsertHost } from "../registry/hosts";
import { createModel, updateModel } from "../registry/models";
import { agentPathChecker } from "../registry/path-check";
import { freshDb, type TestDb } from "../registry/test-support";
import { estimateForModel, estimateMemory, isEstimate, settingsForModel } from "./estimate";

const llama: ShapedModelOptions = { architecture: "llama", embedding: 1024, layers: 4, heads: 16, kvHeads: 4, feedForward: 2816, vocab: 32000, contextLength: 8192 };
const gemma3: ShapedModelOptions = { architecture: "gemma3", embedding: 640, layers: 6, heads: 4, kvHeads: 1, headSize: 256, feedForward: 2048, vocab: 32000, contextLength: 32768, slidingWindow: 512 };
const defaults = { ctxSize: 8192, parallel: 2, batchSize: 2048, ubatchSize: 512, flashAttn: "on", loadMode: "mmap", gpuLayers: 99 };

let t: TestDb;
let root: string;
let link: HostLink;
let links: LinkPool;
let hostId: string;
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  t = freshDb();
  const r = tempDir("synapse-shapes-");
  root = r.dir;
  cleanups.push(r.cleanup);
  await mkdir(path.join(root, "m"), { recursive: true });
  await writeShapedModel(path.join(root, "m", "llama.gguf"), llama);
  await writeShapedModelSplit(path.join(root, "m", "gemma"), 3, gemma3);
  const state = tempDir("synapse-shapes-state-");
  cleanups.push(state.cleanup);
  link = createLocalLink({
    agentConfig: { llamaServerBin: null, stateDir: state.dir, modelRoots: [root], logMaxBytes: 1 << 20, healthIntervalMs: 5000, logLevel: "silent" },
    log: silentLinkLog,
  });
  links = createLinkPool({
    env: { SYNAPSE_MODEL_ROOTS: root, SYNAPSE_STATE_DIR: path.join(state.dir, "pool"), LLAMA_SERVER_BIN: undefined, SYNAPSE_SSH_DIR: path.join(root, "ssh"), SYNAPSE_SSH_HOST_ALIAS: "mac-host" },
    log: testLogger("shapes"),
    localAgent: { logLevel: "silent" },
  });
  hostId = (await upsertHost(t.db, { name: "mac-studio", linkKind: "local", registryModelsRoot: "/models", hostModelsRoot: root })).id;
});
afterAll(async () => {
  await link.close();
  await links.close();
  await t.close();
  for (const c of cleanups) c();
});

async function row(name: string) {
  return t.db.model.findUniqueOrThrow({ where: { name } });
}

describe("discovery stores each model's shape", () => {
  it("estimates a discovered model (a split set among them) from its row, with the files gone", async () => {
    const found = await link.call("discover", {}, { timeoutMs: 30_000 });
    const report = await addDiscoveredModels(t.db, hostId, found, { appPort: 3000 });
    expect(report.added.map((m) => m.name).sort()).toEqual(["gemma", "llama"]);

    // What the estimate should be: the shape read straight from the files, as llama.cpp would load them.
    const parts = [1, 2, 3].map((i) => path.join(root, "m", `gemma-0000${i}-of-00003.gguf`));
    const direct = shapeOfGguf(await Promise.all(parts.map(async (file) => ({ file, gguf: await readGguf(file) }))));
    const gemmaRow = await row("gemma");
    expect(JSON.parse(gemmaRow.shape!)).toMatchObject({ architecture: "gemma3", weightsBytes: direct.weightsBytes, shards: direct.shards });

    await rm(path.join(root, "m"), { recursive: true, force: true }); // no file is read from here on
    const e = estimateForModel(gemmaRow, defaults, "mac-studio");
    expect(e).toEqual(estimateMemory(direct, settingsForModel(gemmaRow, defaults)));
    expect(isEstimate(e) && e.weightsBytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(isEstimate(e) && e.kvCacheBytes).toBeGreaterThan(0);
  });

  it("leaves a model from an agent without shapes unestimated, naming the host; discovery again fills it in", async () => {
    await mkdir(path.join(root, "m"), { recursive: true });
    await writeShapedModel(path.join(root, "m", "older.gguf"), llama);
    const found = await link.call("discover", {}, { timeoutMs: 30_000 });
    // What an older agent sends: the same entries without the fields it does not know.
    const older = found.map(({ shape: _s, shapeError: _e, ...info }) => info);
    await addDiscoveredModels(t.db, hostId, older, { appPort: 3000 });
    const before = estimateForModel(await row("older"), defaults, "mac-studio");
    expect(before).toEqual({ unavailable: expect.stringMatching(/^no memory estimate for older: its shape was never read; run discovery again on mac-studio/) });

    const report = await addDiscoveredModels(t.db, hostId, found, { appPort: 3000 });
    expect(report.added).toEqual([]); // nothing new: the registered model got its shape
    expect(isEstimate(estimateForModel(await row("older"), defaults, "mac-studio"))).toBe(true);
  });
});

describe("a model's save stores its shape", () => {
  it("reads it while checking the path, and replaces it when the path changes", async () => {
    await writeShapedModel(path.join(root, "m", "saved.gguf"), llama);
    await writeShapedModel(path.join(root, "m", "other.gguf"), { ...llama, layers: 8, contextLength: 4096 });
    const checkPath = agentPathChecker(links, { timeoutMs: 10_000 });
    const m = await createModel(t.db, { name: "saved", hostId, filePath: "/models/m/saved.gguf", port: 8200 }, { appPort: 3000, checkPath });
    expect(m.pathCheck).toEqual({ checked: true, note: null });
    expect(JSON.parse((await row("saved")).shape!)).toMatchObject({ architecture: "llama", layers: 4 });
    // Its trained context too, as discovery stores it: the default context size is capped by it.
    expect((await row("saved")).contextLength).toBe(8192);

    await updateModel(t.db, { id: m.id, filePath: "/models/m/other.gguf" }, { appPort: 3000, checkPath });
    expect(JSON.parse((await row("saved")).shape!)).toMatchObject({ layers: 8 });
    expect((await row("saved")).contextLength).toBe(4096);

    // Saved without a check (no checker): the old shape and trained context no longer describe the file, so they go.
    await updateModel(t.db, { id: m.id, filePath: "/models/m/saved.gguf" }, { appPort: 3000 });
    expect((await row("saved")).shape).toBeNull();
    expect((await row("saved")).contextLength).toBeNull();
  });
});
