/**
 * The model page's "Command line" says it is exactly what the agent runs:
 * for a model kept in the Hugging Face cache (a snapshot link into blobs/),
 * a split set there, and a file name a shell would mangle, the preview's
 * argv is the argv of the running llama-server (/proc/<pid>/cmdline), and
 * its copyable line is the line the agent's log banner prints.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDirs } from "../../../host-agent/test/harness/fixtures";
import { hfRepo, hfTinyModel, hfTinyModelSplit } from "../../../host-agent/test/harness/hf-cache";
import { freePort } from "../../../host-agent/test/harness/ports";
import { createCaller } from "../api/root";
import { type AppRuntime } from "../runtime";
import { callerRuntime, type CallerRuntime } from "./fleet/testing/caller-runtime";

let dirs: TestDirs;
let runtime: AppRuntime;
let caller: ReturnType<typeof createCaller>;

let fx: CallerRuntime;

beforeAll(async () => {
  fx = await callerRuntime("synapse-preview-", "preview", 3998);
  ({ dirs, runtime, caller } = fx);
});

afterAll(async () => {
  await fx?.dispose();
});

async function argvOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").slice(0, -1);
}

describe("command preview = the argv the agent ran", () => {
  it.each([
    ["a single-file Hugging Face cache model", async () => (await hfTinyModel(await hfRepo(dirs.modelRoot, "models--synapse--one-GGUF", "a1b2c3"), "tiny-F32.gguf")).path],
    ["a split set in the Hugging Face cache", async () => (await hfTinyModelSplit(await hfRepo(dirs.modelRoot, "models--synapse--two-GGUF", "d4e5f6"), "Q4/two", 2)).paths[0]!],
    ["a snapshot file whose name a shell would mangle", async () => (await hfTinyModel(await hfRepo(dirs.modelRoot, "models--synapse--odd-GGUF", "0a0b0c"), "it's $(odd) Q4.gguf")).path],
  ])("%s", async (name, makeFile) => {
    const file = await makeFile();
    const model = await caller.models.create({ name: name.replaceAll(/[^a-z0-9]+/gi, "-"), filePath: file, port: await freePort() });
    const preview = await caller.models.commandPreview({ id: model.id });
    expect(preview.note).toBeNull();

    const started = await caller.servers.start({ id: model.id, wait: true });
    expect(started).toMatchObject({ state: "ready" });
    const row = (await caller.servers.status()).find((s) => s.modelId === model.id)!;
    const ran = await argvOf(row.pid!);
    expect([preview.binary, ...preview.args]).toEqual(ran);
    expect(ran[ran.indexOf("--model") + 1]).toBe(file);

    const logs = (await caller.servers.logs({ id: model.id, lines: 400 })).lines.join("\n");
    expect(logs).toContain(`: ${preview.commandLine} ===`);
    await caller.servers.stop({ id: model.id });
  });
});
