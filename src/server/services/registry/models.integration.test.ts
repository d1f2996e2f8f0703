/**
 * Models and settings against a real SQLite file: validation names fields and
 * changes nothing, port rules, uniqueness under concurrency, delete while
 * running, and the spec a saved model makes. (Writers in two processes: see
 * the import CLI's test.)
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../../../host-agent/test/harness/ports";
import { upsertHost } from "./hosts";
import { createModel, deleteModel, getModel, listModels, setModelEnabled, updateModel } from "./models";
import { agentPortHolder } from "./port-holder";
import { getSettings, updateSettings } from "./settings";
import { resolveSpec } from "./spec";
import { freshDb, serviceError, snapshot, type TestDb } from "./test-support";
import { writeTransaction } from "./tx";
import type { ModelCreateInput } from "./schemas";

const deps = { appPort: 3000 };
let t: TestDb;
let mac: string;
let linux: string;

beforeAll(async () => {
  t = freshDb();
  mac = (await upsertHost(t.db, { name: "mac", linkKind: "ssh", sshHost: "mac-host", registryModelsRoot: "/models", hostModelsRoot: "/Users/me/models" })).id;
  linux = (await upsertHost(t.db, { name: "linux", linkKind: "local" })).id;
});
afterAll(() => t.close());

const base = (over: Partial<ModelCreateInput> = {}): ModelCreateInput => ({ name: "m", hostId: mac, filePath: "/models/m.gguf", port: 8100, ...over });

describe("create", () => {
  it("creates the model with its server state and shows host and state", async () => {
    const m = await createModel(t.db, base({ name: "qwen-7b", port: 8080, ctxSize: 4096, extraFlags: [{ flag: "--metrics" }] }), deps);
    expect(m).toMatchObject({ name: "qwen-7b", port: 8080, enabled: false, ctxSize: 4096, gpuLayers: null, source: "manual", extraFlags: [{ flag: "--metrics" }] });
    expect(m.host).toEqual({ id: mac, name: "mac", linkKind: "ssh" });
    expect(m.server).toMatchObject({ desired: "stopped", observed: "stopped", pid: null, restarts: 0 });
    expect(await getModel(t.db, m.id)).toEqual(m);
    expect((await listModels(t.db, { hostId: mac })).map((x) => x.name)).toContain("qwen-7b");
  });

  it.each([
    ["bad name", { name: "no spaces allowed" }, ["name"]],
    ["port below 1024", { port: 80 }, ["port"]],
    ["port above 65535", { port: 70000 }, ["port"]],
    ["fractional numbers", { ctxSize: 1.5, threads: 2.2 }, ["ctxSize", "threads"]],
    ["out-of-bounds numbers", { gpuLayers: 5000, batchSize: 0, parallel: 1000, readinessDeadlineMs: 10 }, ["batchSize", "gpuLayers", "parallel", "readinessDeadlineMs"]],
    ["a relative path", { filePath: "models/m.gguf" }, ["filePath"]],
    ["a '..' path", { filePath: "/models/../etc/m.gguf" }, ["filePath"]],
    ["not a .gguf", { filePath: "/models/m.bin" }, ["filePath"]],
    ["an unknown flag", { extraFlags: [{ flag: "--rm-rf" }] }, ["extraFlags.0.flag"]],
    ["a flag without its value", { extraFlags: [{ flag: "--temp" }] }, ["extraFlags.0.value"]],
    ["an unknown field", { colour: "red" }, [""]],
    ["an unknown host", { hostId: "nope" }, ["hostId"]],
  ])("refuses %s, naming the fields, changing nothing", async (_n, over, fields) => {
    const before = await snapshot(t.db);
    const err = await serviceError(createModel(t.db, base(over as Partial<ModelCreateInput>), deps));
    expect(err.code).toBe("BAD_REQUEST");
    expect([...new Set(err.issues?.map((i) => i.path))].sort()).toEqual(fields);
    for (const i of err.issues ?? []) expect(i.message.length).toBeGreaterThan(5);
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("names and aliases: no model's name or alias may be another's name or alias (requests name either); nothing changes", async () => {
    const al = await createModel(t.db, base({ name: "al-owner", alias: "al", port: 8300 }), deps);
    const other = await createModel(t.db, base({ name: "al-other", port: 8301 }), deps);
    const before = await snapshot(t.db);
    const sameAlias = await serviceError(createModel(t.db, base({ name: "eta", alias: "al", port: 8302 }), deps));
    expect(sameAlias).toMatchObject({ code: "CONFLICT", issues: [{ path: "alias", message: expect.stringMatching(/al is already the alias of al-owner/) }] });
    const aliasIsName = await serviceError(createModel(t.db, base({ name: "zeta", alias: "al-other", port: 8302 }), deps));
    expect(aliasIsName).toMatchObject({ code: "CONFLICT", issues: [{ path: "alias", message: expect.stringMatching(/al-other is already the name of al-other/) }] });
    const nameIsAlias = await serviceError(createModel(t.db, base({ name: "al", port: 8302 }), deps));
    expect(nameIsAlias).toMatchObject({ code: "CONFLICT", issues: [{ path: "name", message: expect.stringMatching(/al is the alias of al-owner/) }] });
    const updated = await serviceError(updateModel(t.db, { id: other.id, alias: "al" }, deps));
    expect(updated).toMatchObject({ code: "CONFLICT", issues: [{ path: "alias" }] });
    expect(await snapshot(t.db)).toEqual(before);
    // A model's own alias is no conflict with itself; another free alias is fine.
    expect((await updateModel(t.db, { id: al.id, alias: "al", ctxSize: 2048 }, deps)).ctxSize).toBe(2048);
    expect((await updateModel(t.db, { id: other.id, alias: "other-alias" }, deps)).alias).toBe("other-alias");
    await deleteModel(t.db, { id: al.id });
    await deleteModel(t.db, { id: other.id });
  });

  it("port rules: the app's port never; unique per host; the same port on another host is fine", async () => {
    const before = await snapshot(t.db);
    const app = await serviceError(createModel(t.db, base({ name: "app-port", port: 3000 }), deps));
    expect(app).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "port" }] });
    expect(app.message).toMatch(/app's own port/);
    const taken = await serviceError(createModel(t.db, base({ name: "dup-port", port: 8080 }), deps));
    expect(taken.code).toBe("CONFLICT");
    expect(taken.issues).toEqual([{ path: "port", message: expect.stringMatching(/8080 is already used by qwen-7b on host mac; choose a free port such as 8081/) }]);
    const name = await serviceError(createModel(t.db, base({ name: "qwen-7b", hostId: linux, filePath: "/srv/q.gguf", port: 9000 }), deps));
    expect(name).toMatchObject({ code: "CONFLICT", issues: [{ path: "name" }] });
    expect(await snapshot(t.db)).toEqual(before);
    const other = await createModel(t.db, base({ name: "qwen-on-linux", hostId: linux, filePath: "/srv/q.gguf", port: 8080 }), deps);
    expect(other.port).toBe(8080);
  });

  it("with one host, hostId may be left out; with several it must be given", async () => {
    const err = await serviceError(createModel(t.db, { name: "hostless", filePath: "/models/h.gguf", port: 8200 }, deps));
    expect(err.issues).toEqual([{ path: "hostId", message: "several hosts are registered; choose one" }]);
  });

  it("two concurrent creates on the same port: one succeeds, the other is a clear conflict", async () => {
    const results = await Promise.allSettled([
      createModel(t.db, base({ name: "race-a", port: 8300 }), deps),
      createModel(t.db, base({ name: "race-b", port: 8300 }), deps),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(rejected.reason).toMatchObject({ code: "CONFLICT", issues: [{ path: "port" }] });
  });
});

describe("unique constraints the checks did not see", () => {
  it("a P2002 from the database becomes CONFLICT naming the field, and the transaction rolls back", async () => {
    const before = await snapshot(t.db);
    const err = await serviceError(
      writeTransaction(t.db, async (tx) => {
        await tx.model.create({ data: { name: "first-of-two", hostId: mac, filePath: "/models/a.gguf", port: 8700 } });
        await tx.model.create({ data: { name: "second-of-two", hostId: mac, filePath: "/models/b.gguf", port: 8700 } });
      }),
    );
    expect(err.code).toBe("CONFLICT");
    expect(err.issues).toEqual([{ path: "port", message: "is already used by another model on this host; choose a free port" }]);
    expect(err.cause).toMatchObject({ code: "P2002" });
    expect(await snapshot(t.db)).toEqual(before);
  });
});

describe("update, enable, delete", () => {
  it("changes only the given fields; null returns a field to the global default; a no-op writes nothing", async () => {
    const m = await createModel(t.db, base({ name: "upd", port: 8400, ctxSize: 2048, alias: "u" }), deps);
    const u = await updateModel(t.db, { id: m.id, ctxSize: null, gpuLayers: 20, flashAttn: "off" }, deps);
    expect(u).toMatchObject({ ctxSize: null, gpuLayers: 20, flashAttn: "off", alias: "u", port: 8400 });
    const same = await updateModel(t.db, { id: m.id, gpuLayers: 20, port: 8400 }, deps);
    expect(same.updatedAt).toEqual(u.updatedAt);
  });

  it("refuses bad updates naming fields and leaves the row as it was", async () => {
    const m = await createModel(t.db, base({ name: "upd-bad", port: 8401 }), deps);
    const before = await snapshot(t.db);
    const bad = await serviceError(updateModel(t.db, { id: m.id, port: 1, ubatchSize: -1, loadMode: "tmpfs" as never }, deps));
    expect(bad.issues?.map((i) => i.path).sort()).toEqual(["loadMode", "port", "ubatchSize"]);
    expect((await serviceError(updateModel(t.db, { port: 9000 } as never, deps))).issues?.[0]).toEqual({ path: "id", message: "is required: the id of the model to change" });
    expect(await serviceError(updateModel(t.db, { id: "missing", port: 9000 }, deps))).toMatchObject({ code: "NOT_FOUND" });
    expect(await serviceError(updateModel(t.db, { id: m.id, port: 8080 }, deps))).toMatchObject({ code: "CONFLICT", issues: [{ path: "port" }] });
    expect(await serviceError(updateModel(t.db, { id: m.id, port: 3000 }, deps))).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "port" }] });
    expect(await serviceError(updateModel(t.db, { id: m.id, name: "qwen-7b" }, deps))).toMatchObject({ code: "CONFLICT", issues: [{ path: "name" }] });
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("an extra flag's value llama-server would refuse at start is refused at save, naming flag, value and the accepted values; nothing changes", async () => {
    const m = await createModel(t.db, base({ name: "upd-flags", port: 8402, extraFlags: [{ flag: "--embeddings" }] }), deps);
    const before = await snapshot(t.db);
    const bad = await serviceError(updateModel(t.db, { id: m.id, extraFlags: [{ flag: "--embeddings" }, { flag: "--pooling", value: "nonsense" }] }, deps));
    expect(bad.code).toBe("BAD_REQUEST");
    expect(bad.issues).toEqual([{ path: "extraFlags.1.value", message: '--pooling does not take "nonsense"; it takes none, mean, cls, last or rank' }]);
    const field = await serviceError(updateModel(t.db, { id: m.id, extraFlags: [{ flag: "--ctx-size" as never, value: "4096" }] }, deps));
    expect(field.issues).toEqual([{ path: "extraFlags.0.flag", message: '--ctx-size has its own field: set "Context size" (ctxSize) on the model instead of an extra flag' }]);
    expect(await snapshot(t.db)).toEqual(before);
    expect((await updateModel(t.db, { id: m.id, extraFlags: [{ flag: "--embeddings" }, { flag: "--pooling", value: "mean" }] }, deps)).extraFlags).toEqual([{ flag: "--embeddings" }, { flag: "--pooling", value: "mean" }]);
  });

  it("setEnabled toggles; delete refuses while the server may be running, then deletes with its state", async () => {
    const m = await createModel(t.db, base({ name: "del", port: 8500 }), deps);
    expect((await setModelEnabled(t.db, { id: m.id, enabled: true })).enabled).toBe(true);
    for (const observed of ["starting", "ready", "unhealthy", "stopping"]) {
      await t.db.serverState.update({ where: { modelId: m.id }, data: { observed } });
      const err = await serviceError(deleteModel(t.db, { id: m.id }));
      expect(err.code).toBe("CONFLICT");
      expect(err.message).toBe(`del is ${observed}; stop it first`);
      const rename = await serviceError(updateModel(t.db, { id: m.id, name: "del-renamed" }, deps));
      expect(rename.message).toMatch(/stop it first/);
    }
    // Port and settings may change while running (they apply at the next start).
    expect((await updateModel(t.db, { id: m.id, port: 8501 }, deps)).port).toBe(8501);
    // A start in flight: wanted running, not yet reported as starting.
    await t.db.serverState.update({ where: { modelId: m.id }, data: { observed: "stopped", desired: "running" } });
    expect((await serviceError(deleteModel(t.db, { id: m.id }))).message).toBe("del is wanted running; stop it first");
    await t.db.serverState.update({ where: { modelId: m.id }, data: { observed: "exited", desired: "stopped" } });
    expect(await deleteModel(t.db, { id: m.id })).toEqual({ id: m.id, name: "del" });
    expect(await t.db.serverState.findUnique({ where: { modelId: m.id } })).toBeNull();
    expect(await serviceError(deleteModel(t.db, { id: m.id }))).toMatchObject({ code: "NOT_FOUND" });
  });

  it("a saved model makes a valid spec with the host path and the global defaults", async () => {
    const m = await createModel(t.db, base({ name: "spec-me", filePath: "/models/qwen/q.gguf", port: 8600, threads: 4 }), deps);
    const host = await t.db.host.findUniqueOrThrow({ where: { id: mac } });
    const spec = resolveSpec(m, host, await getSettings(t.db), { apiKey: "secret-key" });
    expect(spec).toMatchObject({ id: "spec-me", modelPath: "/Users/me/models/qwen/q.gguf", port: 8600, threads: 4, ctxSize: 32768, gpuLayers: 99, stopGraceMs: 10_000, apiKey: "secret-key" });
    const row = await t.db.model.findUniqueOrThrow({ where: { id: m.id } });
    // The raw row (extraFlags as JSON text) and the view make the same spec.
    expect(resolveSpec(row, host, await getSettings(t.db))).toEqual(resolveSpec(m, host, await getSettings(t.db)));
  });
});

describe("concurrent writes", () => {
  it("50 creates then 50 updates at once through the service: all applied, no SQLITE_BUSY", async () => {
    const names = Array.from({ length: 50 }, (_, i) => `burst-${i}`);
    const created = await Promise.all(names.map((name, i) => createModel(t.db, base({ name, hostId: linux, filePath: `/srv/${name}.gguf`, port: 20_000 + i }), deps)));
    expect(new Set(created.map((m) => m.port)).size).toBe(50);
    const updated = await Promise.all(created.map((m, i) => updateModel(t.db, { id: m.id, port: 21_000 + i, ctxSize: 1024 + i, enabled: i % 2 === 0 }, deps)));
    expect(updated.map((m) => m.port)).toEqual(names.map((_, i) => 21_000 + i));
    const rows = await t.db.model.findMany({ where: { name: { startsWith: "burst-" } }, orderBy: { port: "asc" } });
    expect(rows.map((r) => [r.port, r.ctxSize, r.enabled])).toEqual(names.map((_, i) => [21_000 + i, 1024 + i, i % 2 === 0]));
  });

  it("50 settings updates at once: each applied, the last write wins a field", async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => updateSettings(t.db, { threads: 1 + i, autoRestart: i % 2 === 0 })));
    const s = await getSettings(t.db);
    expect(s.threads).toBeGreaterThanOrEqual(1);
    expect(s.threads).toBeLessThanOrEqual(50);
  });
});

describe("settings", () => {
  it("get creates the row with the defaults; update is bounded and names the field", async () => {
    const fresh = freshDb();
    try {
      const s = await getSettings(fresh.db);
      // threads null: no --threads, llama-server counts the host's cores (a fixed 8 ran 8 threads on 2 CPUs).
      expect(s).toMatchObject({ id: 1, gpuLayers: 99, ctxSize: 32768, threads: null, batchSize: 512, ubatchSize: 256, flashAttn: "on", loadMode: "mmap", stopGraceMs: 10_000, autoRestart: true });
      const before = await snapshot(fresh.db);
      const err = await serviceError(updateSettings(fresh.db, { ctxSize: -1, stopGraceMs: 10_000_000, flashAttn: "sometimes" as never }));
      expect(err.issues?.map((i) => i.path).sort()).toEqual(["ctxSize", "flashAttn", "stopGraceMs"]);
      expect(await snapshot(fresh.db)).toEqual(before);
      const u = await updateSettings(fresh.db, { ctxSize: 8192, loadMode: "mlock" });
      expect(u).toMatchObject({ ctxSize: 8192, loadMode: "mlock", threads: null });
      expect((await updateSettings(fresh.db, { ctxSize: 8192 })).updatedAt).toEqual(u.updatedAt);
      // A count, and back to auto.
      expect((await updateSettings(fresh.db, { threads: 4 })).threads).toBe(4);
      expect((await updateSettings(fresh.db, { threads: null })).threads).toBeNull();
    } finally {
      await fresh.close();
    }
  });
});

describe("saving a port another program holds", () => {
  it("saves it and warns, naming the holder, on a local host; no warning for a free port, another field, or an ssh host", async () => {
    const held = net.createServer();
    await new Promise<void>((resolve) => held.listen(0, "127.0.0.1", resolve));
    const port = (held.address() as net.AddressInfo).port;
    try {
      // The ssh host here has no agent to ask (its link does not open): its ports cannot be known.
      const noLinks = { get: () => Promise.reject(new Error("no ssh host in this test")) };
      const probe = { ...deps, portHolder: agentPortHolder(noLinks) };
      const m = await createModel(t.db, base({ name: "held-port", hostId: linux, filePath: "/models/held.gguf", port: await freePort() }), deps);
      const saved = await updateModel(t.db, { id: m.id, port }, probe);
      expect(saved.port).toBe(port);
      expect(saved.portWarning).toBe(`port ${port} is held by pid ${process.pid} (node) now: held-port cannot start on it until that program lets it go; stop it, or choose another port`);
      expect((await getModel(t.db, m.id)).port).toBe(port);
      // Another field: the port was not changed by this save, nothing to say.
      expect((await updateModel(t.db, { id: m.id, ctxSize: 2048 }, probe)).portWarning).toBeNull();
      const free = await freePort();
      expect((await updateModel(t.db, { id: m.id, port: free }, probe)).portWarning).toBeNull();
      // A port on an ssh host is that host's: this machine's listeners say nothing of it (its agent is asked:
      // ssh.integration.test.ts).
      const remote = await createModel(t.db, base({ name: "held-port-mac", filePath: "/models/held-mac.gguf", port: await freePort() }), deps);
      expect((await updateModel(t.db, { id: remote.id, port }, probe)).portWarning).toBeNull();
    } finally {
      await new Promise<void>((resolve) => held.close(() => resolve()));
    }
  });
});
