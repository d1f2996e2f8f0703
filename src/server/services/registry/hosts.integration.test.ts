import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseEnv } from "~/server/env";
import { deleteHost, ensureDefaultHost, getHost, listHosts, upsertHost } from "./hosts";
import { createModel } from "./models";
import { freshDb, serviceError, snapshot, type TestDb } from "./test-support";

let t: TestDb;
beforeEach(() => {
  t = freshDb();
});
afterEach(() => t.close());

const FP = `SHA256:${"a1B2".repeat(10)}xyz`;

describe("hosts", () => {
  it("upsert creates, then updates by id or by name; unchanged input writes nothing", async () => {
    const h = await upsertHost(t.db, { name: "mac", linkKind: "ssh", sshHost: "host.docker.internal", sshUser: "me", sshPort: 2222, hostKeyFingerprint: FP, registryModelsRoot: "/models", hostModelsRoot: "/Users/me/models" });
    expect(h).toMatchObject({ name: "mac", linkKind: "ssh", sshPort: 2222, hostKeyFingerprint: FP });
    const again = await upsertHost(t.db, { name: "mac", linkKind: "ssh", sshHost: "host.docker.internal", sshUser: "me", sshPort: 2222, hostKeyFingerprint: FP, registryModelsRoot: "/models", hostModelsRoot: "/Users/me/models" });
    expect(again).toEqual(h);
    const renamed = await upsertHost(t.db, { id: h.id, name: "studio", linkKind: "ssh", sshHost: "10.0.0.5" });
    expect(renamed).toMatchObject({ id: h.id, name: "studio", sshHost: "10.0.0.5", sshUser: null, sshPort: 22, hostModelsRoot: null });
    expect((await listHosts(t.db)).map((x) => [x.name, x.modelCount])).toEqual([["studio", 0]]);
    expect(await getHost(t.db, h.id)).toEqual(renamed);
  });

  it.each([
    ["ssh without an address", { name: "a", linkKind: "ssh" }, ["sshHost"]],
    ["a malformed fingerprint", { name: "a", hostKeyFingerprint: "MD5:aa:bb" }, ["hostKeyFingerprint"]],
    ["half a path mapping", { name: "a", hostModelsRoot: "/Users/me/models" }, ["registryModelsRoot"]],
    ["a relative models root", { name: "a", hostModelsRoot: "models", registryModelsRoot: "/models" }, ["hostModelsRoot"]],
    ["an unknown link kind", { name: "a", linkKind: "telnet" }, ["linkKind"]],
    ["a bad name", { name: "my host" }, ["name"]],
    ["a bad ssh port", { name: "a", linkKind: "ssh", sshHost: "h", sshPort: 0 }, ["sshPort"]],
  ])("refuses %s naming the field, changing nothing", async (_n, input, fields) => {
    const before = await snapshot(t.db);
    const err = await serviceError(upsertHost(t.db, input as never));
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.issues?.map((i) => i.path).sort()).toEqual(fields);
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("a name taken by another host is a conflict; delete refuses while models use the host", async () => {
    const a = await upsertHost(t.db, { name: "a" });
    await upsertHost(t.db, { name: "b" });
    expect(await serviceError(upsertHost(t.db, { id: a.id, name: "b" }))).toMatchObject({ code: "CONFLICT", issues: [{ path: "name" }] });
    expect(await serviceError(upsertHost(t.db, { id: "nope", name: "c" }))).toMatchObject({ code: "NOT_FOUND" });
    await createModel(t.db, { name: "m", hostId: a.id, filePath: "/m/m.gguf", port: 8080 }, { appPort: 3000 });
    const err = await serviceError(deleteHost(t.db, { id: a.id }));
    expect(err).toMatchObject({ code: "CONFLICT" });
    expect(err.message).toBe("host a still has 1 model(s); delete or move them first");
    const b = (await listHosts(t.db)).find((h) => h.name === "b")!;
    expect(await deleteHost(t.db, { id: b.id })).toEqual({ id: b.id });
  });
});

describe("ensureDefaultHost", () => {
  it("USE_EXTERNAL_SERVERS=false: a local host, no mapping without PRAXIS_MODEL_PATH; idempotent", async () => {
    const env = parseEnv({});
    const h = await ensureDefaultHost(t.db, env);
    expect(h).toMatchObject({ name: "local", linkKind: "local", sshHost: null, hostModelsRoot: null, registryModelsRoot: null });
    expect(await ensureDefaultHost(t.db, env)).toEqual(h);
    expect(await t.db.host.count()).toBe(1);
  });

  it("USE_EXTERNAL_SERVERS=false with PRAXIS_MODEL_PATH: maps /models to that folder", async () => {
    const h = await ensureDefaultHost(t.db, parseEnv({ PRAXIS_MODEL_PATH: "/srv/hf/hub" }));
    expect(h).toMatchObject({ name: "local", linkKind: "local", registryModelsRoot: "/models", hostModelsRoot: "/srv/hf/hub" });
  });

  it("USE_EXTERNAL_SERVERS=false in the image: the local host finds the models where compose mounts PRAXIS_MODEL_PATH (SYNAPSE_LOCAL_MODELS_ROOT)", async () => {
    const h = await ensureDefaultHost(t.db, parseEnv({ PRAXIS_MODEL_PATH: "/Users/me/models", SYNAPSE_LOCAL_MODELS_ROOT: "/models" }));
    expect(h).toMatchObject({ name: "local", linkKind: "local", registryModelsRoot: "/models", hostModelsRoot: "/models" });
  });

  it("USE_EXTERNAL_SERVERS=true: an ssh host named after the alias, details left to the ssh folder; concurrent calls make one", async () => {
    const env = parseEnv({ USE_EXTERNAL_SERVERS: "true", SYNAPSE_SSH_HOST_ALIAS: "studio", PRAXIS_MODEL_PATH: "/Users/me/.cache/huggingface/hub", SYNAPSE_REGISTRY_MODELS_ROOT: "/models" });
    const all = await Promise.all(Array.from({ length: 10 }, () => ensureDefaultHost(t.db, env)));
    expect(new Set(all.map((h) => h.id)).size).toBe(1);
    expect(all[0]).toMatchObject({ name: "studio", linkKind: "ssh", sshHost: "studio", sshUser: null, sshIdentityFile: null, hostKeyFingerprint: null, registryModelsRoot: "/models", hostModelsRoot: "/Users/me/.cache/huggingface/hub" });
    expect(await t.db.host.count()).toBe(1);
  });

  it("the default alias is mac-host; a relative PRAXIS_MODEL_PATH over ssh is refused", async () => {
    expect((await ensureDefaultHost(t.db, parseEnv({ USE_EXTERNAL_SERVERS: "true" }))).name).toBe("mac-host");
    const fresh = freshDb();
    try {
      const err = await serviceError(ensureDefaultHost(fresh.db, parseEnv({ USE_EXTERNAL_SERVERS: "true", PRAXIS_MODEL_PATH: "models" })));
      expect(err.issues?.[0]?.path).toBe("PRAXIS_MODEL_PATH");
      expect(await fresh.db.host.count()).toBe(0);
    } finally {
      await fresh.close();
    }
  });

  it("with hosts already registered, returns the one of the default name, else the oldest", async () => {
    const first = await upsertHost(t.db, { name: "first" });
    await upsertHost(t.db, { name: "second" });
    expect((await ensureDefaultHost(t.db, parseEnv({}))).id).toBe(first.id);
    const local = await upsertHost(t.db, { name: "local" });
    expect((await ensureDefaultHost(t.db, parseEnv({}))).id).toBe(local.id);
    expect(await t.db.host.count()).toBe(3);
  });
});
