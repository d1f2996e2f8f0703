/**
 * Discovery end to end: real tiny GGUF files in a flat folder and in the
 * Hugging Face cache layout, found by a real agent behind the local link,
 * added to a real SQLite registry under the host's path mapping.
 */
import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { createLocalLink, silentLinkLog, type HostLink } from "synapse-host-agent/link";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel } from "../../../../host-agent/src/gguf/tiny-model.ts";
import { tempDir } from "../../../../test/harness/temp";
import { addDiscoveredModels } from "./discover";
import { upsertHost } from "./hosts";
import { createModel } from "./models";
import { freshDb, serviceError, snapshot, type TestDb } from "./test-support";

let t: TestDb;
let root: string;
const cleanups: (() => void)[] = [];
let link: HostLink;
let hostId: string;

async function hfFile(org: string, repo: string, rev: string, file: string, blob: string, name: string): Promise<string> {
  const dir = path.join(root, "hub", `models--${org}--${repo}`);
  await mkdir(path.join(dir, "blobs"), { recursive: true });
  await mkdir(path.join(dir, "snapshots", rev), { recursive: true });
  await writeTinyModel(path.join(dir, "blobs", blob), { name, contextLength: 512 });
  const p = path.join(dir, "snapshots", rev, file);
  await symlink(`../../blobs/${blob}`, p);
  return p;
}

beforeAll(async () => {
  t = freshDb();
  const r = tempDir("synapse-discover-");
  root = r.dir;
  cleanups.push(r.cleanup);
  await mkdir(path.join(root, "flat"), { recursive: true });
  await writeTinyModel(path.join(root, "flat", "tiny-chat.gguf"), { name: "tiny-chat" });
  await writeTinyModel(path.join(root, "flat", "already.gguf"));
  await writeTinyModel(path.join(root, "flat", "big-00001-of-00002.gguf"));
  await writeTinyModel(path.join(root, "flat", "big-00002-of-00002.gguf"));
  await writeFile(path.join(root, "flat", "broken.gguf"), "not a model");
  await hfFile("synapse", "Tiny-Llama-GGUF", "0123abcd", "Tiny-Llama-F32.gguf", "a".repeat(64), "hf-tiny");
  await hfFile("mirror", "Tiny-Llama-GGUF", "fedc3210", "Tiny-Llama-F32.gguf", "b".repeat(64), "hf-tiny-mirror");

  const state = tempDir("synapse-discover-state-");
  cleanups.push(state.cleanup);
  link = createLocalLink({
    agentConfig: { llamaServerBin: null, stateDir: state.dir, modelRoots: [root], logMaxBytes: 1 << 20, healthIntervalMs: 5000, logLevel: "silent" },
    log: silentLinkLog,
  });
  hostId = (await upsertHost(t.db, { name: "mac-host", linkKind: "local", registryModelsRoot: "/models", hostModelsRoot: root })).id;
  // Already registered (same host, same file): skipped. Holds 8080, so discovery starts above it.
  await createModel(t.db, { name: "already", hostId, filePath: "/models/flat/already.gguf", port: 8080 }, { appPort: 3000 });
});
afterAll(async () => {
  await link.close();
  await t.close();
  for (const c of cleanups) c();
});

describe("addDiscoveredModels", () => {
  it("adds new files disabled, with free ports, unique names, registry paths and GGUF metadata", async () => {
    const infos = await link.call("discover", {});
    const report = await addDiscoveredModels(t.db, hostId, infos, { appPort: 8082 });

    expect(report.added.map((a) => [a.name, a.filePath, a.port])).toEqual([
      ["big", "/models/flat/big-00001-of-00002.gguf", 8081],
      ["tiny-chat", "/models/flat/tiny-chat.gguf", 8083],
      ["Tiny-Llama-F32", "/models/hub/models--mirror--Tiny-Llama-GGUF/snapshots/fedc3210/Tiny-Llama-F32.gguf", 8084],
      ["synapse-Tiny-Llama-F32", "/models/hub/models--synapse--Tiny-Llama-GGUF/snapshots/0123abcd/Tiny-Llama-F32.gguf", 8085],
    ]);
    expect(report.skipped).toEqual([
      { path: path.join(root, "flat", "already.gguf"), reason: "already registered as already" },
      { path: path.join(root, "flat", "big-00002-of-00002.gguf"), reason: "part 2 of 2 of a split model; its first part is the one served" },
    ]);
    expect(report.errors).toEqual([{ path: path.join(root, "flat", "broken.gguf"), message: expect.stringMatching(/not a GGUF file/) }]);

    const hf = await t.db.model.findUniqueOrThrow({ where: { name: "synapse-Tiny-Llama-F32" }, include: { server: true } });
    expect(hf).toMatchObject({ enabled: false, source: "discovered", architecture: "llama", quantization: "F32", contextLength: 512, parameterCount: 115_520 });
    expect(hf.sizeBytes).toBeGreaterThan(400_000);
    expect(hf.server).toMatchObject({ desired: "stopped", observed: "stopped" });
  });

  it("a second run adds nothing", async () => {
    const before = await snapshot(t.db);
    const report = await addDiscoveredModels(t.db, hostId, await link.call("discover", {}), { appPort: 8082 });
    expect(report.added).toEqual([]);
    expect(report.skipped).toHaveLength(6);
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("files outside the mapped root keep their host path; bad input and unknown hosts are refused", async () => {
    const report = await addDiscoveredModels(
      t.db,
      hostId,
      [{ path: "/elsewhere/x.gguf", sizeBytes: 10, architecture: "llama", name: null, parameterCount: null, quantization: null, contextLength: null, error: null }],
      { appPort: 8082 },
    );
    expect(report.added).toEqual([{ id: expect.any(String), name: "x", filePath: "/elsewhere/x.gguf", port: 8086 }]);
    const before = await snapshot(t.db);
    expect((await serviceError(addDiscoveredModels(t.db, hostId, [{ path: 1 }] as never, { appPort: 8082 }))).code).toBe("BAD_REQUEST");
    expect((await serviceError(addDiscoveredModels(t.db, "nope", [], { appPort: 8082 }))).issues?.[0]?.path).toBe("hostId");
    expect(await snapshot(t.db)).toEqual(before);
  });
});
