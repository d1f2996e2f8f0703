/**
 * A model's path checked when it is saved, against a real SQLite file and a
 * real local agent behind the app's link pool: paths a start would refuse are
 * a field error and nothing is saved; with a host that cannot be reached, or
 * an agent that predates the check, the model is saved with a note.
 */
import { execFileSync } from "node:child_process";
import { mkdir, stat, symlink } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../../../../host-agent/test/harness/fixtures";
import { tinyModel } from "../../../../host-agent/test/harness/tiny-model";
import { createLinkPool, type LinkPool } from "../fleet/links";
import { testLogger } from "../fleet/testing/db";
import { upsertHost } from "./hosts";
import { createModel, getModel, updateModel } from "./models";
import { agentPathChecker, type PathChecker } from "./path-check";
import { freshDb, serviceError, snapshot, type TestDb } from "./test-support";

let t: TestDb;
let dirs: TestDirs;
let links: LinkPool;
let checkPath: PathChecker;
let local: string;
let good: string;

beforeAll(async () => {
  t = freshDb();
  dirs = await testDirs("synapse-path-check-");
  good = await tinyModel(dirs.modelRoot, "good.gguf");
  await tinyModel(dirs.root, "outside.gguf");
  await mkdir(path.join(dirs.modelRoot, "dir.gguf"));
  await symlink(path.join(dirs.root, "outside.gguf"), path.join(dirs.modelRoot, "escape.gguf"));
  links = createLinkPool({
    env: { SYNAPSE_MODEL_ROOTS: dirs.modelRoot, SYNAPSE_STATE_DIR: dirs.stateDir, LLAMA_SERVER_BIN: undefined, SYNAPSE_SSH_DIR: path.join(dirs.root, "ssh"), SYNAPSE_SSH_HOST_ALIAS: "mac-host" },
    log: testLogger("path-check"),
    localAgent: { logLevel: "silent" },
  });
  checkPath = agentPathChecker(links, { timeoutMs: 3_000 });
  local = (await upsertHost(t.db, { name: "local", linkKind: "local" })).id;
});
afterAll(async () => {
  await links.close();
  await t.close();
  await dirs.cleanup();
});

describe("create and update check the path on the host", () => {
  it("saves a good path, checked", async () => {
    const m = await createModel(t.db, { name: "good", hostId: local, filePath: good, port: 8100 }, { appPort: 3000, checkPath });
    expect(m.pathCheck).toEqual({ checked: true, note: null });
  });

  it.each([
    ["outside the model roots", () => path.join(dirs.root, "outside.gguf"), /is outside the model roots/],
    ["a folder named dir.gguf", () => path.join(dirs.modelRoot, "dir.gguf"), /dir\.gguf is not a regular file/],
    ["a symlink escaping the roots", () => path.join(dirs.modelRoot, "escape.gguf"), /resolves to .*outside\.gguf, which is outside the model roots/],
    ["a missing file", () => path.join(dirs.modelRoot, "missing.gguf"), /missing\.gguf does not exist/],
  ])("refuses %s as a field error on create and on update, saving nothing", async (_what, filePath, message) => {
    const before = await snapshot(t.db);
    const created = await serviceError(createModel(t.db, { name: "bad", hostId: local, filePath: filePath(), port: 8101 }, { appPort: 3000, checkPath }));
    expect(created).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "filePath", message: expect.stringMatching(message) }] });
    const existing = await t.db.model.findUniqueOrThrow({ where: { name: "good" } });
    const updated = await serviceError(updateModel(t.db, { id: existing.id, filePath: filePath() }, { appPort: 3000, checkPath }));
    expect(updated).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "filePath", message: expect.stringMatching(message) }] });
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("stores what a scan would of a file added by path (the page's Model), and of the next file on a path change", async () => {
    const first = await tinyModel(dirs.modelRoot, "described.gguf");
    const second = await tinyModel(dirs.modelRoot, "described-wide.gguf", { layers: 3, contextLength: 512 });
    const m = await createModel(t.db, { name: "described", hostId: local, filePath: first, port: 8110 }, { appPort: 3000, checkPath });
    // The tiny model as discovery records it (discover.integration.test.ts): llama, F32, 115,520 parameters.
    expect(await getModel(t.db, m.id)).toMatchObject({ architecture: "llama", quantization: "F32", parameterCount: 115_520, contextLength: 256, sizeBytes: (await stat(first)).size });

    const moved = await updateModel(t.db, { id: m.id, filePath: second }, { appPort: 3000, checkPath });
    expect(moved).toMatchObject({ architecture: "llama", quantization: "F32", contextLength: 512, sizeBytes: (await stat(second)).size });
    expect(moved.parameterCount).toBeGreaterThan(115_520);

    // Saved without a check: what was read described the other file, so it goes.
    const unchecked = await updateModel(t.db, { id: m.id, filePath: first }, { appPort: 3000 });
    expect(unchecked).toMatchObject({ architecture: null, quantization: null, parameterCount: null, contextLength: null, sizeBytes: null });
  });

  it("does not ask the host when an update leaves the path alone", async () => {
    const existing = await t.db.model.findUniqueOrThrow({ where: { name: "good" } });
    const m = await updateModel(t.db, { id: existing.id, ctxSize: 512 }, { appPort: 3000, checkPath });
    expect(m.pathCheck).toBeNull();
  });
});

describe("when the host cannot check", () => {
  it("saves with a 'not checked yet' note when the host cannot be reached", async () => {
    const key = path.join(dirs.root, "id_ed25519");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
    // Port 1 on loopback: nothing listens there.
    const far = (await upsertHost(t.db, { name: "far-mac", linkKind: "ssh", sshHost: "127.0.0.1", sshPort: 1, sshUser: "me", sshIdentityFile: key })).id;
    const m = await createModel(t.db, { name: "far-model", hostId: far, filePath: "/Users/me/models/x.gguf", port: 8100 }, { appPort: 3000, checkPath });
    expect(m.pathCheck).toEqual({ checked: false, note: expect.stringMatching(/^path not checked yet: host far-mac could not be reached \(.+\); it is checked again when the model starts$/) });
    expect(await t.db.model.count({ where: { name: "far-model" } })).toBe(1);
  });

  it("saves with a note naming the host to update when its agent predates the check", async () => {
    // stand-in for an older agent: the real local link, whose hello names no features.
    const older: Pick<LinkPool, "get"> = {
      get: async (host) => {
        const link = await links.get(host);
        return {
          ...link,
          call: (async (method: string, params: never, options: never) => {
            const r = await link.call(method as "hello", params, options);
            return method === "hello" ? { ...r, features: undefined } : r;
          }) as typeof link.call,
        };
      },
    };
    const m = await createModel(t.db, { name: "old-agent", hostId: local, filePath: path.join(dirs.modelRoot, "missing.gguf"), port: 8102 }, { appPort: 3000, checkPath: agentPathChecker(older) });
    expect(m.pathCheck).toEqual({ checked: false, note: "path not checked yet: the agent on local cannot check paths; update the agent on local; it is checked again when the model starts" });
  });
});
