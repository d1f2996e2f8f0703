/**
 * Discovery end to end: real tiny GGUF files in a flat folder and in the
 * Hugging Face cache layout, found by a real agent behind the local link,
 * added to a real SQLite registry under the host's path mapping.
 */
import { mkdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { createLocalLink, silentLinkLog, type HostLink } from "synapse-host-agent/link";
import { canBind } from "synapse-host-agent/port";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModel, writeTinyModelSplit } from "../../../../host-agent/src/gguf/tiny-model.ts";
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
    expect(report.registered).toEqual([{ id: expect.any(String), name: "already", filePath: "/models/flat/already.gguf", port: 8080, enabled: false }]);
    expect(report.skipped).toEqual([{ path: path.join(root, "flat", "big-00002-of-00002.gguf"), reason: "part 2 of 2 of a split model; its first part is the one served" }]);
    expect(report.errors).toEqual([{ path: path.join(root, "flat", "broken.gguf"), message: expect.stringMatching(/not a GGUF file/) }]);

    const hf = await t.db.model.findUniqueOrThrow({ where: { name: "synapse-Tiny-Llama-F32" }, include: { server: true } });
    expect(hf).toMatchObject({ enabled: false, source: "discovered", architecture: "llama", quantization: "F32", contextLength: 512, parameterCount: 115_520 });
    expect(hf.sizeBytes).toBeGreaterThan(400_000);
    expect(hf.server).toMatchObject({ desired: "stopped", observed: "stopped" });
  });

  it("a second run adds nothing and lists every model it found as registered, with whether it is enabled", async () => {
    await t.db.model.update({ where: { name: "tiny-chat" }, data: { enabled: true } });
    const before = await snapshot(t.db);
    const report = await addDiscoveredModels(t.db, hostId, await link.call("discover", {}), { appPort: 8082 });
    expect(report.added).toEqual([]);
    expect(report.registered.map((r) => [r.name, r.enabled, r.note])).toEqual([
      ["already", false, undefined],
      ["big", false, "split set of 2 parts"],
      ["tiny-chat", true, undefined],
      ["Tiny-Llama-F32", false, undefined],
      ["synapse-Tiny-Llama-F32", false, undefined],
    ]);
    expect(report.skipped).toHaveLength(1);
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("a file backing two models lists both; a file listed twice is reported once", async () => {
    const already = await t.db.model.findUniqueOrThrow({ where: { name: "already" } });
    const twin = await createModel(t.db, { name: "already-long-ctx", hostId, filePath: already.filePath, port: 8090 }, { appPort: 3000 });
    const infos = await link.call("discover", {});
    const again = infos.find((i) => i.path.endsWith("already.gguf"))!;
    const report = await addDiscoveredModels(t.db, hostId, [...infos, again], { appPort: 8082 });
    expect(report.registered.filter((r) => r.filePath === already.filePath).map((r) => [r.name, r.id])).toEqual([
      ["already", already.id],
      ["already-long-ctx", twin.id],
    ]);
    expect(report.skipped).toContainEqual({ path: again.path, reason: "listed twice; already registered as already, already-long-ctx" });
    await t.db.model.delete({ where: { id: twin.id } });
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

describe("model folders as people keep them (issue 14)", () => {
  let root2: string;
  let link2: HostLink;
  let host2: string;
  const file = (...p: string[]) => path.join(root2, ...p);

  beforeAll(async () => {
    const r = tempDir("synapse-discover-kept-");
    root2 = r.dir;
    cleanups.push(r.cleanup);
    // A whole split set, an incomplete one, a lone second part, a dangling link.
    await mkdir(file("split"), { recursive: true });
    await writeTinyModelSplit(file("split", "whole"), 3, { name: "whole" });
    const [, half2] = await writeTinyModelSplit(file("split", "half"), 2);
    await rm(half2!);
    const [lone1] = await writeTinyModelSplit(file("split", "lone"), 2);
    await rm(lone1!);
    await symlink("../nowhere/model.gguf", file("split", "dangling.gguf"));
    // Two revisions of one cache repository; refs/main names the second one written.
    const repo = file("hub", "models--org--Tiny-GGUF");
    await mkdir(path.join(repo, "refs"), { recursive: true });
    await mkdir(path.join(repo, "blobs"), { recursive: true });
    for (const [commit, blob] of [["aaaaaaa1111", "b1"], ["bbbbbbb2222", "b2"]] as const) {
      await writeTinyModel(path.join(repo, "blobs", blob), { name: `tiny-${commit}` });
      await mkdir(path.join(repo, "snapshots", commit), { recursive: true });
      await symlink(`../../blobs/${blob}`, path.join(repo, "snapshots", commit, "Tiny-F32.gguf"));
    }
    await writeFile(path.join(repo, "refs", "main"), "bbbbbbb2222");

    const state = tempDir("synapse-discover-kept-state-");
    cleanups.push(state.cleanup);
    link2 = createLocalLink({
      agentConfig: { llamaServerBin: null, stateDir: state.dir, modelRoots: [root2], logMaxBytes: 1 << 20, healthIntervalMs: 5000, logLevel: "silent" },
      log: silentLinkLog,
    });
    host2 = (await upsertHost(t.db, { name: "kept-host", linkKind: "local" })).id;
  });
  afterAll(() => link2.close());

  it("adds a whole split set once with the size of every part, reports broken sets and links, and labels the revision main does not name", async () => {
    const before = await t.db.model.count();
    const report = await addDiscoveredModels(t.db, host2, await link2.call("discover", {}), { appPort: 3000 });

    expect(report.added.map((a) => [a.name, a.note])).toEqual([
      ["Tiny-F32-rev-aaaaaaa", "revision aaaaaaa, not the one refs/main names"],
      ["Tiny-F32", "the revision refs/main names"],
      ["whole", "split set of 3 parts"],
    ]);
    const whole = await t.db.model.findUniqueOrThrow({ where: { name: "whole" } });
    const sizes = await Promise.all([1, 2, 3].map((i) => stat(file("split", `whole-0000${i}-of-00003.gguf`)).then((s) => s.size)));
    expect(whole).toMatchObject({ filePath: file("split", "whole-00001-of-00003.gguf"), parameterCount: 115_520, sizeBytes: sizes.reduce((a, b) => a + b, 0) });

    expect(report.errors).toEqual([
      { path: file("split", "dangling.gguf"), message: "broken link: points to ../nowhere/model.gguf, which does not exist" },
      { path: file("split", "half-00001-of-00002.gguf"), message: `incomplete split set: part 2 (half-00002-of-00002.gguf) of 2 missing from ${file("split")}; llama-server needs every part to load it` },
      { path: file("split", "lone-00002-of-00002.gguf"), message: "part 2 of a split set of 2 whose first part is missing: part 1 (lone-00001-of-00002.gguf)" },
    ]);
    expect(report.skipped).toEqual([
      { path: file("split", "whole-00002-of-00003.gguf"), reason: "part 2 of 3 of a split model; its first part is the one served" },
      { path: file("split", "whole-00003-of-00003.gguf"), reason: "part 3 of 3 of a split model; its first part is the one served" },
    ]);
    expect(await t.db.model.count()).toBe(before + 3);
  });

  it("makes the same split checks on the list an older agent sends (every part, no splitCount)", async () => {
    const info = (p: string) => ({ path: p, sizeBytes: 100, architecture: "llama", name: null, parameterCount: 10, quantization: "F32", contextLength: 256, error: null });
    const report = await addDiscoveredModels(t.db, host2, [info("/old/a-00001-of-00002.gguf"), info("/old/b-00002-of-00002.gguf"), info("/old/c-00001-of-00002.gguf"), info("/old/c-00002-of-00002.gguf")], { appPort: 3000 });
    expect(report.errors).toEqual([
      { path: "/old/a-00001-of-00002.gguf", message: "incomplete split set: part 2 (a-00002-of-00002.gguf) of 2 missing; llama-server needs every part to load it" },
      { path: "/old/b-00002-of-00002.gguf", message: "part 2 of a split set of 2 whose first part is missing: part 1 (b-00001-of-00002.gguf)" },
    ]);
    expect(report.added).toEqual([expect.objectContaining({ name: "c", filePath: "/old/c-00001-of-00002.gguf", note: "split set of 2 parts" })]);
    expect((await t.db.model.findUniqueOrThrow({ where: { name: "c" } })).sizeBytes).toBe(200);
    expect(report.skipped).toEqual([{ path: "/old/c-00002-of-00002.gguf", reason: "part 2 of 2 of a split model; its first part is the one served" }]);
  });

  it("on this machine, a port another program holds is not given to a new model (its first start would fail); the report says which", async () => {
    const own = (await upsertHost(t.db, { name: "this-machine", linkKind: "local", registryModelsRoot: "/here", hostModelsRoot: "/here" })).id;
    // The lowest port discovery would give: taken here by a real listener, as a web server on 8080 would be.
    let held: net.Server | null = null;
    let heldPort = 0;
    for (let p = 8080; p < 8180 && held === null; p++) {
      const s = net.createServer();
      const ok = await new Promise<boolean>((r) => {
        s.once("error", () => r(false));
        s.listen({ port: p, host: "127.0.0.1", exclusive: true }, () => r(true));
      });
      if (ok) [held, heldPort] = [s, p];
      // Ports below it that another program holds already: registered here, so discovery starts at ours.
      else await createModel(t.db, { name: `busy-${p}`, hostId: own, filePath: `/here/busy-${p}.gguf`, port: p }, { appPort: 3000 });
    }
    expect(held).not.toBeNull();
    try {
      const info = { path: "/here/fresh.gguf", sizeBytes: 100, architecture: "llama", name: null, parameterCount: 10, quantization: "F32", contextLength: 256, error: null };
      const report = await addDiscoveredModels(t.db, own, [info], { appPort: 3000, localPortHeld: async (port) => !(await canBind(port, "127.0.0.1")) });
      expect(report.added).toHaveLength(1);
      const added = report.added[0]!;
      expect(added.port).toBeGreaterThan(heldPort);
      expect(await canBind(added.port, "127.0.0.1")).toBe(true);
      expect(added.note).toMatch(new RegExp(`^ports? ${heldPort}(, \\d+)* in use by another program on this machine$`));
      // Without the probe (an ssh host's ports cannot be probed from here) the registry alone decides.
      const other = await addDiscoveredModels(t.db, own, [{ ...info, path: "/here/other.gguf" }], { appPort: 3000 });
      expect(other.added[0]!.port).toBe(heldPort);
    } finally {
      await new Promise((r) => held!.close(r));
    }
  });
});
