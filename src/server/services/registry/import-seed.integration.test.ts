/**
 * Import of the seed project's files (test/fixtures/seed, written exactly as
 * its Python code writes them) into a real SQLite registry.
 */
import fs from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { upsertHost } from "./hosts";
import { importSeed } from "./import-seed";
import { createModel } from "./models";
import { getSettings, updateSettings } from "./settings";
import { resolveSpec } from "./spec";
import { freshDb, serviceError, snapshot, type TestDb } from "./test-support";

const seedDir = path.resolve(import.meta.dirname, "../../../../test/fixtures/seed");
const read = (rel: string) => fs.readFileSync(path.join(seedDir, rel), "utf8");
const registryText = read("backend/data/model_registry.json");
const settingsText = read("backend/data/runtime_settings.json");
const invalidText = read("invalid/model_registry.json");
const deps = { appPort: 3000 };

let t: TestDb;
let hostId: string;
beforeEach(async () => {
  t = freshDb();
  hostId = (await upsertHost(t.db, { name: "mac-host", linkKind: "ssh", sshHost: "mac-host", registryModelsRoot: "/models", hostModelsRoot: "/Users/me/.cache/huggingface/hub" })).id;
});
afterEach(() => t.close());

describe("importSeed", () => {
  it("imports both files as the seed writes them: every model, nulls as global defaults, settings", async () => {
    const report = await importSeed(t.db, { registry: JSON.parse(registryText), runtimeSettings: JSON.parse(settingsText) }, { ...deps, hostId });
    expect(report).toEqual({
      created: ["deepseek_r1_0528_8p0b_q4km_powerful", "qwen2_coder_p5_14p0b_q4km_powerful", "gpt_oss_20p0b_q4km_powerful", "llama_3p2_3p0b_q80_balanced", "qwen3_4p0b_q4km_fast"],
      updated: [],
      unchanged: [],
      invalid: [],
      settings: "updated",
      settingsIssues: [],
    });
    const models = await t.db.model.findMany({ orderBy: { port: "asc" }, include: { server: true } });
    expect(models.map((m) => [m.name, m.port, m.enabled, m.source])).toEqual([
      ["deepseek_r1_0528_8p0b_q4km_powerful", 8080, true, "imported"],
      ["qwen2_coder_p5_14p0b_q4km_powerful", 8081, true, "imported"],
      ["gpt_oss_20p0b_q4km_powerful", 8082, false, "imported"],
      ["llama_3p2_3p0b_q80_balanced", 8083, false, "imported"],
      ["qwen3_4p0b_q4km_fast", 8084, true, "imported"],
    ]);
    const [deepseek, qwen, gpt, llama] = models;
    expect(deepseek).toMatchObject({ gpuLayers: null, ctxSize: null, threads: null, batchSize: null, family: "deepseek", quantization: "Q4_K_M", parameterCount: 8e9 });
    expect(deepseek?.filePath).toBe("/models/models--unsloth--DeepSeek-R1-0528-Qwen3-8B-GGUF/snapshots/3f1a2b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a/DeepSeek-R1-0528-Qwen3-8B-Q4_K_M.gguf");
    expect(qwen).toMatchObject({ gpuLayers: 99, ctxSize: 16384, threads: 8, batchSize: null });
    expect(gpt).toMatchObject({ ctxSize: 65536, batchSize: 1024 });
    expect(llama).toMatchObject({ gpuLayers: 0, threads: 4 });
    expect(models.every((m) => m.server?.desired === "stopped")).toBe(true);
    // The fixture is a user's file: ctx_size and threads changed from the seed's defaults.
    expect(await getSettings(t.db)).toMatchObject({ gpuLayers: 99, ctxSize: 16384, threads: 10, batchSize: 512, ubatchSize: 256, flashAttn: "on", loadMode: "mmap" });

    // What the agent would be asked to run: the container path mapped to the Mac's folder, nulls filled in.
    const host = await t.db.host.findUniqueOrThrow({ where: { id: hostId } });
    const spec = resolveSpec(deepseek!, host, await getSettings(t.db));
    expect(spec.modelPath).toBe("/Users/me/.cache/huggingface/hub/models--unsloth--DeepSeek-R1-0528-Qwen3-8B-GGUF/snapshots/3f1a2b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a/DeepSeek-R1-0528-Qwen3-8B-Q4_K_M.gguf");
    expect(spec).toMatchObject({ id: "deepseek_r1_0528_8p0b_q4km_powerful", port: 8080, gpuLayers: 99, ctxSize: 16384, threads: 10, flashAttn: "on", loadMode: "mmap" });
  });

  it("a re-import changes nothing (the file as text this time): all unchanged, updatedAt untouched", async () => {
    await importSeed(t.db, { registry: registryText, runtimeSettings: settingsText }, { ...deps, hostId });
    const before = await snapshot(t.db);
    const again = await importSeed(t.db, { registry: registryText, runtimeSettings: settingsText }, { ...deps, hostId });
    expect(again.created).toEqual([]);
    expect(again.updated).toEqual([]);
    expect(again.unchanged).toHaveLength(5);
    expect(again.settings).toBe("unchanged");
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("an edited file updates just what changed, keeping what the seed cannot say (mlock, GGUF metadata)", async () => {
    await importSeed(t.db, { registry: registryText, runtimeSettings: settingsText }, { ...deps, hostId });
    await updateSettings(t.db, { loadMode: "mlock" });
    const qwen = await t.db.model.findUniqueOrThrow({ where: { name: "qwen3_4p0b_q4km_fast" } });
    await t.db.model.update({ where: { id: qwen.id }, data: { architecture: "qwen3", contextLength: 40960 } });
    const edited = JSON.parse(registryText);
    edited.models.qwen3_4p0b_q4km_fast.ctx_size = null;
    edited.models.qwen3_4p0b_q4km_fast.enabled = false;
    const report = await importSeed(t.db, { registry: edited, runtimeSettings: settingsText }, { ...deps, hostId });
    expect(report.updated).toEqual(["qwen3_4p0b_q4km_fast"]);
    expect(report.unchanged).toHaveLength(4);
    expect(report.settings).toBe("unchanged");
    expect(await t.db.model.findUniqueOrThrow({ where: { id: qwen.id } })).toMatchObject({ ctxSize: null, enabled: false, architecture: "qwen3", contextLength: 40960 });
    expect((await getSettings(t.db)).loadMode).toBe("mlock");
  });

  it("reports invalid entries one by one with the seed's key names and imports the rest", async () => {
    const before = await t.db.model.count();
    const report = await importSeed(t.db, { registry: invalidText }, { ...deps, hostId });
    expect(report.created).toEqual(["qwen3_4p0b_q4km_fast", "llama_3p2_3p0b_q80_balanced"]);
    expect(report.settings).toBe("absent");
    const byId = Object.fromEntries(report.invalid.map((i) => [i.modelId, i.issues.map((x) => x.path).sort()]));
    expect(byId).toEqual({
      privileged_port_model: ["port"],
      relative_path_model: ["file_path"],
      bad_gpu_layers: ["ctx_size", "n_gpu_layers"],
      duplicate_port: ["port"],
    });
    const dup = report.invalid.find((i) => i.modelId === "duplicate_port")!;
    expect(dup.issues[0]?.message).toBe("8090 is also given to qwen3_4p0b_q4km_fast in this file; choose a free port");
    expect(await t.db.model.count()).toBe(before + 2);
    // A null port (the seed ran out of its range) gets the lowest free one.
    expect((await t.db.model.findUniqueOrThrow({ where: { name: "llama_3p2_3p0b_q80_balanced" } })).port).toBe(8080);
  });

  it("ports held by other models, the app's port, and names on another host are reported invalid", async () => {
    const other = await upsertHost(t.db, { name: "linux" });
    await createModel(t.db, { name: "mine", hostId, filePath: "/models/mine.gguf", port: 8081 }, deps);
    await createModel(t.db, { name: "gpt_oss_20p0b_q4km_powerful", hostId: other.id, filePath: "/srv/gpt.gguf", port: 8082 }, deps);
    const report = await importSeed(t.db, { registry: registryText }, { appPort: 8083, hostId });
    expect(report.invalid.map((i) => [i.modelId, i.issues.map((x) => x.message)])).toEqual([
      ["qwen2_coder_p5_14p0b_q4km_powerful", ["8081 is already used by model mine on host mac-host; choose a free port"]],
      ["gpt_oss_20p0b_q4km_powerful", ["a model named gpt_oss_20p0b_q4km_powerful already exists on host linux; rename one of them"]],
      ["llama_3p2_3p0b_q80_balanced", ["8083 is the app's own port; choose another"]],
    ]);
    expect(report.created).toEqual(["deepseek_r1_0528_8p0b_q4km_powerful", "qwen3_4p0b_q4km_fast"]);
  });

  it("refuses files that are not the seed's shape, changing nothing", async () => {
    const before = await snapshot(t.db);
    expect((await serviceError(importSeed(t.db, { registry: "{not json" }, { ...deps, hostId }))).issues?.[0]?.path).toBe("registry");
    expect((await serviceError(importSeed(t.db, { registry: { models: [1, 2] } }, { ...deps, hostId }))).issues?.[0]?.path).toBe("registry.models");
    expect((await serviceError(importSeed(t.db, { registry: [] }, { ...deps, hostId }))).code).toBe("BAD_REQUEST");
    expect((await serviceError(importSeed(t.db, {}, { ...deps, hostId }))).code).toBe("BAD_REQUEST");
    expect((await serviceError(importSeed(t.db, { registry: registryText }, { ...deps, hostId: "nope" }))).issues?.[0]?.path).toBe("hostId");
    const badSettings = await importSeed(t.db, { runtimeSettings: { ...JSON.parse(settingsText), ctx_size: "big", flash_attn: "yes" } }, { ...deps, hostId });
    expect(badSettings.settings).toBe("invalid");
    expect(badSettings.settingsIssues.map((i) => i.path).sort()).toEqual(["ctx_size", "flash_attn"]);
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("accepts model_registry.json and runtime_settings.json saved with a byte-order mark", async () => {
    const report = await importSeed(t.db, { registry: `\uFEFF${registryText}`, runtimeSettings: `\uFEFF${settingsText}` }, { ...deps, hostId });
    expect(report.created).toHaveLength(5);
    expect(report.settings).toBe("updated");
  });

  it("reports a model id given twice in the text (JSON.parse would keep the last) and imports neither copy", async () => {
    const text = `{
  "models": {
    "twice": {"file_path": "/models/a.gguf", "port": 8090, "enabled": true},
    "once": {"file_path": "/models/b.gguf", "port": 8091},
    "twice": {"file_path": "/models/c.gguf", "port": 8092, "port": 8093}
  }
}`;
    const report = await importSeed(t.db, { registry: text }, { ...deps, hostId });
    expect(report.created).toEqual(["once"]);
    expect(report.invalid).toEqual([
      {
        modelId: "twice",
        issues: [
          { path: "model_id", message: "twice appears 2 times in model_registry.json (lines 3 and 5); JSON keeps only the last, so none of them is imported: keep one" },
          { path: "port", message: "appears on line 5 (2 times) of this entry; JSON keeps only the last, so keep one" },
        ],
      },
    ]);
    expect(await t.db.model.count({ where: { name: "twice" } })).toBe(0);
  });

  it("refuses a registry with two \"models\" objects, and reports a setting given twice, changing nothing", async () => {
    const before = await snapshot(t.db);
    const two = await serviceError(importSeed(t.db, { registry: '{"models": {"a": {"file_path": "/models/a.gguf"}},\n "models": {}}' }, { ...deps, hostId }));
    expect(two.issues).toEqual([{ path: "registry.models", message: expect.stringMatching(/^"models" appears on lines 1 and 2 of model_registry\.json; JSON keeps only the last/) }]);
    const settings = await importSeed(t.db, { runtimeSettings: '{"ctx_size": 4096,\n"ctx_size": 8192}' }, { ...deps, hostId });
    expect(settings).toMatchObject({ settings: "invalid", settingsIssues: [{ path: "ctx_size", message: "appears on lines 1 and 2 of runtime_settings.json; JSON keeps only the last, so keep one" }] });
    expect(await snapshot(t.db)).toEqual(before);
  });
});
