import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseEnv } from "~/server/env";
import { createEventBus, type EventBus } from "../fleet/events";
import { testLogger } from "../fleet/testing/db";
import { deleteHost, ensureDefaultHost, getHost, listHosts, updateHost, upsertHost } from "./hosts";
import { createModel, updateModel } from "./models";
import { freshDb, serviceError, snapshot, type TestDb } from "./test-support";

let t: TestDb;
beforeEach(() => {
  t = freshDb();
});
afterEach(() => t.close());

const FP = `SHA256:${"a1B2".repeat(10)}xyz`;
/** The host-edit events (action events), oldest first. */
const hostEvents = (db: TestDb) => db.db.event.findMany({ where: { kind: "action" }, orderBy: { id: "asc" }, select: { hostId: true, message: true, data: true } });

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
    ["a malformed fingerprint", { name: "a", linkKind: "ssh", sshHost: "h", hostKeyFingerprint: "MD5:aa:bb" }, ["hostKeyFingerprint"]],
    ["half a path mapping", { name: "a", hostModelsRoot: "/Users/me/models" }, ["registryModelsRoot"]],
    ["a relative models root", { name: "a", hostModelsRoot: "models", registryModelsRoot: "/models" }, ["hostModelsRoot"]],
    ["an unknown link kind", { name: "a", linkKind: "telnet" }, ["linkKind"]],
    ["a bad name", { name: "my host" }, ["name"]],
    ["a bad ssh port", { name: "a", linkKind: "ssh", sshHost: "h", sshPort: 0 }, ["sshPort"]],
    ["model ports on a local host", { name: "a", linkKind: "local", modelPorts: "8080-8099" }, ["modelPorts"]],
    ["model ports on an ssh host in direct mode", { name: "a", linkKind: "ssh", sshHost: "h", upstreamMode: "direct", directAddress: "10.0.0.5", modelPorts: "8080-8099" }, ["modelPorts"]],
    ["a direct address on an ssh host in tunnel mode (the default)", { name: "a", linkKind: "ssh", sshHost: "h", modelPorts: "8080-8099", directAddress: "10.0.0.5" }, ["directAddress"]],
    [
      "ssh settings on a host left local (the default kind)",
      { name: "a", sshHost: "mac.lan", sshPort: 2222, sshUser: "me", sshIdentityFile: "/keys/id", hostKeyFingerprint: FP, upstreamMode: "direct", directAddress: "10.0.0.5" },
      ["directAddress", "hostKeyFingerprint", "sshHost", "sshIdentityFile", "sshPort", "sshUser", "upstreamMode"],
    ],
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

describe("updateHost: some fields, the rest kept", () => {
  let events: EventBus;
  beforeEach(async () => {
    events = await createEventBus({ db: t.db, log: testLogger("hosts") });
  });
  afterEach(() => events.close());

  const sshHost = { name: "mac", linkKind: "ssh", sshHost: "mac.lan", sshPort: 2222, sshUser: "me", sshIdentityFile: "/keys/id_ed25519", hostKeyFingerprint: FP, registryModelsRoot: "/models", hostModelsRoot: "/Users/me/models", upstreamMode: "tunnel", modelPorts: "8080-8099" } as const;
  const hostEvents = () => t.db.event.findMany({ where: { kind: "action" }, orderBy: { id: "asc" }, select: { hostId: true, message: true, data: true } });

  it("a partial update of an ssh host (only modelPorts) keeps its ssh fields; null clears a nullable field", async () => {
    const h = await upsertHost(t.db, sshHost);
    const ports = await updateHost(t.db, { id: h.id, modelPorts: "9000-9009" });
    const { updatedAt: _u, ...rest } = h;
    expect(ports).toMatchObject({ ...rest, modelPorts: "9000-9009" });
    expect(await getHost(t.db, h.id)).toEqual(ports);

    const cleared = await updateHost(t.db, { id: h.id, sshUser: null, memoryBudgetMiB: null });
    expect(cleared).toMatchObject({ ...rest, modelPorts: "9000-9009", sshUser: null });
    // Both model roots cleared together: the merged host maps no paths.
    expect(await updateHost(t.db, { id: h.id, hostModelsRoot: null, registryModelsRoot: null })).toMatchObject({ linkKind: "ssh", sshHost: "mac.lan", hostModelsRoot: null, registryModelsRoot: null });
  });

  it.each([
    ["linkKind ssh on a local host without sshHost", { linkKind: "ssh" }, ["sshHost"], /sshHost: is required for an ssh host/],
    ["half a path mapping", { hostModelsRoot: "/Users/me/models" }, ["registryModelsRoot"], /registryModelsRoot: set both/],
    ["a bad port range and a bad direct address", { modelPorts: "8080-", directAddress: "a b" }, ["directAddress", "modelPorts"], /modelPorts/],
    ["null for a field that cannot be cleared", { name: null }, ["name"], /name: must be a name/],
    ["model ports on a local host", { modelPorts: "8080-8099" }, ["modelPorts"], /^modelPorts: applies to ssh hosts only \(the port range forwarded over ssh\); remove it or set linkKind to ssh$/],
    ["an ssh port on a local host", { sshPort: 2200 }, ["sshPort"], /^sshPort: applies to ssh hosts only \(the port the ssh link connects to\); remove it or set linkKind to ssh$/],
    ["a pinned host key on a local host (hosts.pinKey)", { hostKeyFingerprint: FP }, ["hostKeyFingerprint"], /^hostKeyFingerprint: applies to ssh hosts only/],
    ["a field hosts do not have", { createdAt: "2026-01-01" }, [""], /createdAt/],
  ])("refuses %s naming the field; nothing written, no event", async (_n, patch, fields, message) => {
    const h = await upsertHost(t.db, { name: "box", linkKind: "local" }, { events });
    const before = await snapshot(t.db);
    const eventsBefore = await t.db.event.count();
    const err = await serviceError(updateHost(t.db, { id: h.id, ...patch } as never, { events }));
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.issues?.map((i) => i.path).sort()).toEqual(fields);
    expect(err.message).toMatch(message);
    expect(await snapshot(t.db)).toEqual(before);
    expect(await t.db.event.count()).toBe(eventsBefore);
  });

  it("an unknown id is NOT_FOUND; no id says it is required", async () => {
    const err = await serviceError(updateHost(t.db, { id: "nope", sshPort: 2200 }));
    expect(err).toMatchObject({ code: "NOT_FOUND", message: "no host with id nope", issues: [{ path: "id" }] });
    expect((await serviceError(updateHost(t.db, { sshPort: 2200 } as never))).issues).toEqual([{ path: "id", message: "is required: the id of the host to change" }]);
    expect(await t.db.host.count()).toBe(0);
  });

  it("a model's edit event says what each field changed from and to, as a host's does (the name and host by name alone)", async () => {
    const h = await upsertHost(t.db, { name: "local" }, { events });
    const m = await createModel(t.db, { name: "tiny", hostId: h.id, filePath: "/m/tiny.gguf", port: 8080 }, { appPort: 3000 });
    await updateModel(t.db, { id: m.id, port: 8081, ctxSize: 8192 }, { appPort: 3000, events });
    await updateModel(t.db, { id: m.id, name: "tiny-2", ctxSize: null }, { appPort: 3000, events });
    const edits = (await t.db.event.findMany({ where: { kind: "action", modelId: m.id }, orderBy: { id: "asc" }, select: { message: true, data: true } })).filter((e) => e.message.startsWith("model "));
    expect(edits.map((e) => e.message)).toEqual(["model tiny saved (port 8080 → 8081, ctxSize none → 8192)", "model tiny renamed to tiny-2 (name, ctxSize 8192 → none)"]);
    expect(JSON.parse(edits[0]!.data!)).toMatchObject({ registryEdit: { changes: { port: { from: 8080, to: 8081 }, ctxSize: { from: null, to: 8192 } } } });
  });

  it("records the host-edit event naming the fields saved with their old and new values; an update that changes nothing writes nothing and records none", async () => {
    const h = await upsertHost(t.db, sshHost, { events });
    await updateHost(t.db, { id: h.id, modelPorts: "9000-9009", memoryBudgetMiB: 4096 }, { events });
    const renamed = await updateHost(t.db, { id: h.id, name: "studio" }, { events });
    expect(await hostEvents()).toEqual([
      { hostId: h.id, message: "host mac added", data: JSON.stringify({ hostEdit: { change: "created" } }) },
      {
        hostId: h.id,
        message: "host mac updated (modelPorts 8080-8099 → 9000-9009, memoryBudgetMiB none → 4096)",
        data: JSON.stringify({ hostEdit: { change: "updated", fields: ["modelPorts", "memoryBudgetMiB"], changes: { modelPorts: { from: "8080-8099", to: "9000-9009" }, memoryBudgetMiB: { from: null, to: 4096 } } } }),
      },
      { hostId: h.id, message: "host mac renamed to studio (name)", data: JSON.stringify({ hostEdit: { change: "updated", fields: ["name"], changes: { name: { from: "mac", to: "studio" } } } }) },
    ]);

    const before = await snapshot(t.db);
    expect(await updateHost(t.db, { id: h.id }, { events })).toEqual(renamed);
    expect(await updateHost(t.db, { id: h.id, name: "studio", sshPort: 2222, sshUser: "me", modelPorts: "9000-9009" }, { events })).toEqual(renamed);
    expect(await snapshot(t.db)).toEqual(before);
    expect(await hostEvents()).toHaveLength(3);
  });

  it("model ports on an existing local host are refused by the upsert too, naming the field and what to do; nothing written, no event", async () => {
    const h = await upsertHost(t.db, { name: "box", linkKind: "local", hostModelsRoot: "/srv/models", registryModelsRoot: "/models" }, { events });
    const before = await snapshot(t.db);
    const eventsBefore = await t.db.event.count();
    const err = await serviceError(upsertHost(t.db, { id: h.id, name: "box", linkKind: "local", hostModelsRoot: "/srv/models", registryModelsRoot: "/models", modelPorts: "8080-8099" }, { events }));
    expect(err).toMatchObject({
      code: "BAD_REQUEST",
      message: "modelPorts: applies to ssh hosts only (the port range forwarded over ssh); remove it or set linkKind to ssh",
      issues: [{ path: "modelPorts", message: "applies to ssh hosts only (the port range forwarded over ssh); remove it or set linkKind to ssh" }],
    });
    expect(await snapshot(t.db)).toEqual(before);
    expect(await t.db.event.count()).toBe(eventsBefore);
  });

  it("switching an ssh host to local clears its ssh settings in the same write and says so in the event; its models and other fields stay", async () => {
    const h = await upsertHost(t.db, { ...sshHost, memoryBudgetMiB: 4096, llamaServerBin: "/opt/llama/bin/llama-server" }, { events });
    const m = await createModel(t.db, { name: "m", hostId: h.id, filePath: "/models/m.gguf", port: 8085 }, { appPort: 3000 });
    const local = await updateHost(t.db, { id: h.id, linkKind: "local" }, { events });
    const cleared = { sshHost: null, sshPort: 22, sshUser: null, sshIdentityFile: null, hostKeyFingerprint: null, upstreamMode: "tunnel", modelPorts: null, directAddress: null };
    expect(local).toMatchObject({ id: h.id, name: "mac", linkKind: "local", ...cleared, hostModelsRoot: "/Users/me/models", registryModelsRoot: "/models", llamaServerBin: "/opt/llama/bin/llama-server", memoryBudgetMiB: 4096 });
    expect(await getHost(t.db, h.id)).toEqual(local);
    expect(await t.db.model.findUniqueOrThrow({ where: { id: m.id }, select: { hostId: true, port: true } })).toEqual({ hostId: h.id, port: 8085 });

    const [edit] = (await hostEvents()).slice(-1);
    expect(edit!.message).toBe(
      `host mac updated (linkKind ssh → local; ssh settings cleared: sshHost mac.lan → none, sshPort 2222 → 22, sshUser me → none, sshIdentityFile /keys/id_ed25519 → none, hostKeyFingerprint ${FP.slice(0, 45)}… → none, modelPorts 8080-8099 → none)`,
    );
    expect(JSON.parse(edit!.data!)).toMatchObject({
      hostEdit: { change: "updated", sshCleared: ["sshHost", "sshPort", "sshUser", "sshIdentityFile", "hostKeyFingerprint", "modelPorts"], changes: { linkKind: { from: "ssh", to: "local" }, sshHost: { from: "mac.lan", to: null }, modelPorts: { from: "8080-8099", to: null } } },
    });

    // Local now: an ssh field given later is refused as on any local host; back to ssh needs the address again.
    const before = await snapshot(t.db);
    expect(await serviceError(updateHost(t.db, { id: h.id, modelPorts: "8080-8099" }))).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "modelPorts" }] });
    expect(await serviceError(updateHost(t.db, { id: h.id, linkKind: "ssh" }))).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "sshHost" }] });
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("a switch of linkKind while a model on the host runs, or is wanted running, is a conflict naming the models; nothing written; once stopped it saves", async () => {
    const h = await upsertHost(t.db, sshHost, { events });
    const m = await createModel(t.db, { name: "m", hostId: h.id, filePath: "/models/m.gguf", port: 8085 }, { appPort: 3000 });
    const n = await createModel(t.db, { name: "n", hostId: h.id, filePath: "/models/n.gguf", port: 8086 }, { appPort: 3000 });
    await t.db.serverState.update({ where: { modelId: m.id }, data: { desired: "running", observed: "ready", pid: 4242 } });
    await t.db.serverState.update({ where: { modelId: n.id }, data: { desired: "running" } });
    const before = await snapshot(t.db);
    const eventsBefore = await t.db.event.count();
    const message = "models on host mac are running: m (ready), n (wanted running); stop them first, then change linkKind from ssh to local (their servers would keep running on the ssh host, unwatched)";
    expect(await serviceError(updateHost(t.db, { id: h.id, linkKind: "local" }, { events }))).toMatchObject({ code: "CONFLICT", message: `linkKind: ${message}`, issues: [{ path: "linkKind", message }] });
    expect(await serviceError(upsertHost(t.db, { id: h.id, name: "mac", linkKind: "local" }, { events }))).toMatchObject({ code: "CONFLICT", issues: [{ path: "linkKind" }] });
    expect(await snapshot(t.db)).toEqual(before);
    expect(await t.db.event.count()).toBe(eventsBefore);
    // Other edits of the host still save while they run.
    expect(await updateHost(t.db, { id: h.id, memoryBudgetMiB: 4096 }, { events })).toMatchObject({ linkKind: "ssh", memoryBudgetMiB: 4096 });

    await t.db.serverState.updateMany({ where: { modelId: { in: [m.id, n.id] } }, data: { desired: "stopped", observed: "stopped", pid: null } });
    expect(await updateHost(t.db, { id: h.id, linkKind: "local" }, { events })).toMatchObject({ linkKind: "local", sshHost: null });
  });

  it("a switch to local that also sets an ssh field is refused naming the field; the ssh host stays as it was", async () => {
    const h = await upsertHost(t.db, sshHost, { events });
    const before = await snapshot(t.db);
    const eventsBefore = await t.db.event.count();
    const err = await serviceError(updateHost(t.db, { id: h.id, linkKind: "local", modelPorts: "9000-9009" }, { events }));
    expect(err).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "modelPorts", message: "applies to ssh hosts only (the port range forwarded over ssh); remove it or set linkKind to ssh" }] });
    expect(await snapshot(t.db)).toEqual(before);
    expect(await t.db.event.count()).toBe(eventsBefore);
  });

  it("the form's switch to local (an upsert without the ssh fields) is saved and told the same way", async () => {
    const h = await upsertHost(t.db, { ...sshHost, hostKeyFingerprint: null }, { events });
    const local = await upsertHost(t.db, { id: h.id, name: "mac", linkKind: "local", hostModelsRoot: "/Users/me/models", registryModelsRoot: "/models" }, { events });
    expect(local).toMatchObject({ linkKind: "local", sshHost: null, sshPort: 22, sshUser: null, sshIdentityFile: null, modelPorts: null });
    expect((await hostEvents()).at(-1)!.message).toBe(
      "host mac updated (linkKind ssh → local; ssh settings cleared: sshHost mac.lan → none, sshPort 2222 → 22, sshUser me → none, sshIdentityFile /keys/id_ed25519 → none, modelPorts 8080-8099 → none)",
    );
  });

  it("a local host saved with ssh settings before they were refused loses them on its next update, which names them", async () => {
    const row = await t.db.host.create({ data: { name: "old-box", linkKind: "local", sshHost: "mac.lan", sshPort: 2222, modelPorts: "8080-8099" } });
    const saved = await updateHost(t.db, { id: row.id, memoryBudgetMiB: 2048 }, { events });
    expect(saved).toMatchObject({ linkKind: "local", sshHost: null, sshPort: 22, modelPorts: null, memoryBudgetMiB: 2048 });
    expect((await hostEvents()).at(-1)!.message).toBe("host old-box updated (sshHost mac.lan → none, sshPort 2222 → 22, modelPorts 8080-8099 → none, memoryBudgetMiB none → 2048)");
  });

  it("the upsert's other checks hold: another host's name is a conflict, a range that leaves a model's port out is refused", async () => {
    const h = await upsertHost(t.db, sshHost);
    await upsertHost(t.db, { name: "other" });
    await createModel(t.db, { name: "m", hostId: h.id, filePath: "/models/m.gguf", port: 8085 }, { appPort: 3000 });
    const before = await snapshot(t.db);
    expect(await serviceError(updateHost(t.db, { id: h.id, name: "other" }))).toMatchObject({ code: "CONFLICT", issues: [{ path: "name", message: "other is already the name of another host; choose another name" }] });
    const range = await serviceError(updateHost(t.db, { id: h.id, modelPorts: "9000-9009" }));
    expect(range).toMatchObject({ code: "BAD_REQUEST", issues: [{ path: "modelPorts", message: "models on host mac use ports outside 9000-9009: m (8085); widen the range or move those models first" }] });
    expect(await snapshot(t.db)).toEqual(before);
  });
});

describe("editing a host while its models run: refused when the link would reach another agent", () => {
  let events: EventBus;
  beforeEach(async () => {
    events = await createEventBus({ db: t.db, log: testLogger("hosts") });
  });
  afterEach(() => events.close());

  const sshHost = { name: "mac", linkKind: "ssh", sshHost: "mac.lan", sshPort: 2222, sshUser: "me", sshIdentityFile: "/keys/id_ed25519", registryModelsRoot: "/models", hostModelsRoot: "/Users/me/models", upstreamMode: "tunnel", modelPorts: "8080-8099" } as const;
  const RUNNING = "models on host mac are running: m (ready), n (wanted running); stop them first, then";

  /** Two models on the host: m's server is up, n's was asked for (desired running, not yet up). */
  async function runningOn(hostId: string): Promise<{ m: string; n: string }> {
    const m = await createModel(t.db, { name: "m", hostId, filePath: "/models/m.gguf", port: 8085 }, { appPort: 3000 });
    const n = await createModel(t.db, { name: "n", hostId, filePath: "/models/n.gguf", port: 8086 }, { appPort: 3000 });
    await t.db.serverState.update({ where: { modelId: m.id }, data: { desired: "running", observed: "ready", pid: 4242 } });
    await t.db.serverState.update({ where: { modelId: n.id }, data: { desired: "running" } });
    return { m: m.id, n: n.id };
  }
  const stopAll = () => t.db.serverState.updateMany({ data: { desired: "stopped", observed: "stopped", pid: null } });
  /** The upsert the form sends for the stored host with `patch` over it (tunnel mode: no directAddress). */
  const formUpsert = async (id: string, patch: Record<string, unknown>) => {
    const { createdAt: _c, updatedAt: _u, directAddress: _d, ...row } = await getHost(t.db, id);
    return upsertHost(t.db, { ...row, ...patch } as never, { events });
  };

  it.each([
    ["sshHost", "studio.lan", "change sshHost from mac.lan to studio.lan (another address may be another machine, which would not know their servers: they would keep running unwatched)"],
    ["sshPort", 2200, "change sshPort from 2222 to 2200 (another port may be another machine's sshd, which would not know their servers: they would keep running unwatched)"],
    ["sshUser", "other", "change sshUser from me to other (another user has its own agent, which would not know their servers: they would keep running unwatched)"],
    ["sshUser", null, "change sshUser from me to none (another user has its own agent, which would not know their servers: they would keep running unwatched)"],
    ["sshIdentityFile", "/keys/other", "change sshIdentityFile from /keys/id_ed25519 to /keys/other (another key's authorized_keys line may force another agent, which would not know their servers: they would keep running unwatched)"],
  ])("a change of %s to %s is a conflict naming the models and what to do, by update and by the form's upsert; nothing written, no event; once they stop it saves", async (field, value, edit) => {
    const h = await upsertHost(t.db, sshHost, { events });
    await runningOn(h.id);
    const before = await snapshot(t.db);
    const eventsBefore = await t.db.event.count();
    const message = `${RUNNING} ${edit}`;
    expect(await serviceError(updateHost(t.db, { id: h.id, [field]: value }, { events }))).toMatchObject({ code: "CONFLICT", message: `${field}: ${message}`, issues: [{ path: field, message }] });
    expect(await serviceError(formUpsert(h.id, { [field]: value }))).toMatchObject({ code: "CONFLICT", issues: [{ path: field, message }] });
    expect(await snapshot(t.db)).toEqual(before);
    expect(await t.db.event.count()).toBe(eventsBefore);

    await stopAll();
    expect(await updateHost(t.db, { id: h.id, [field]: value }, { events })).toMatchObject({ [field]: value });
  });

  it("several reach fields at once: one issue per field, each naming the models", async () => {
    const h = await upsertHost(t.db, sshHost, { events });
    await runningOn(h.id);
    const before = await snapshot(t.db);
    const err = await serviceError(updateHost(t.db, { id: h.id, sshHost: "studio.lan", sshPort: 22, name: "studio" }, { events }));
    expect(err.code).toBe("CONFLICT");
    expect(err.issues?.map((i) => i.path)).toEqual(["sshHost", "sshPort"]);
    expect(err.issues?.every((i) => i.message.startsWith(RUNNING))).toBe(true);
    expect(err.message).toMatch(/^sshHost: models on host mac are running: .*; sshPort: models on host mac are running: .* change sshPort from 2222 to 22 /);
    expect(await snapshot(t.db)).toEqual(before);
  });

  it("edits that keep the link's agent save while the models run: name, memory budget, wider ports, a pinned key, paths, binary, upstream mode and direct address", async () => {
    const h = await upsertHost(t.db, sshHost, { events });
    await runningOn(h.id);
    const edits: [string, Record<string, unknown>][] = [
      ["rename (an ssh host's agent does not go by the host's name)", { name: "studio" }],
      ["memory budget", { memoryBudgetMiB: 4096 }],
      ["wider model ports", { modelPorts: "8080-8199" }],
      ["pin the host key (hosts.pinKey)", { hostKeyFingerprint: FP }],
      ["path mapping", { hostModelsRoot: "/Volumes/models", registryModelsRoot: "/models" }],
      ["llama-server binary", { llamaServerBin: "/opt/llama/bin/llama-server" }],
      ["direct mode (the gateway reads the host per request)", { upstreamMode: "direct", directAddress: "10.0.0.5" }],
      ["another direct address", { directAddress: "10.0.0.6" }],
      ["back to the tunnel", { upstreamMode: "tunnel", modelPorts: "8080-8099", directAddress: null }],
    ];
    for (const [what, patch] of edits) {
      const saved = await updateHost(t.db, { id: h.id, ...patch }, { events }).catch((err: unknown) => {
        throw new Error(`${what}: ${String(err)}`);
      });
      expect(saved, what).toMatchObject(patch);
    }
    expect(await getHost(t.db, h.id)).toMatchObject({ name: "studio", sshHost: "mac.lan", sshPort: 2222, sshUser: "me", hostKeyFingerprint: FP, upstreamMode: "tunnel", modelPorts: "8080-8099", directAddress: null });
    expect((await hostEvents(t)).length).toBe(1 + edits.length);
  });

  it("a local host's rename is a conflict while its models run (its agent's records are in a folder named after it); its binary and models folder save", async () => {
    const h = await upsertHost(t.db, { name: "box", linkKind: "local" }, { events });
    await runningOn(h.id);
    const before = await snapshot(t.db);
    const eventsBefore = await t.db.event.count();
    const message =
      "models on host box are running: m (ready), n (wanted running); stop them first, then rename box to studio (a local agent keeps its servers' records in a folder named after the host: under the new name it would not know them, and they would keep running unwatched)";
    expect(await serviceError(updateHost(t.db, { id: h.id, name: "studio" }, { events }))).toMatchObject({ code: "CONFLICT", message: `name: ${message}`, issues: [{ path: "name", message }] });
    expect(await serviceError(upsertHost(t.db, { id: h.id, name: "studio", linkKind: "local" }, { events }))).toMatchObject({ code: "CONFLICT", issues: [{ path: "name" }] });
    expect(await snapshot(t.db)).toEqual(before);
    expect(await t.db.event.count()).toBe(eventsBefore);

    expect(await updateHost(t.db, { id: h.id, llamaServerBin: "/opt/llama/bin/llama-server", hostModelsRoot: "/srv/models", registryModelsRoot: "/models", memoryBudgetMiB: 2048 }, { events })).toMatchObject({ name: "box", llamaServerBin: "/opt/llama/bin/llama-server" });
    await stopAll();
    expect(await updateHost(t.db, { id: h.id, name: "studio" }, { events })).toMatchObject({ name: "studio" });
  });

  it("models stopped, or exited and not wanted running, do not hold the host: its address changes", async () => {
    const h = await upsertHost(t.db, sshHost, { events });
    const { m, n } = await runningOn(h.id);
    await t.db.serverState.update({ where: { modelId: m }, data: { desired: "stopped", observed: "exited", pid: null } });
    await t.db.serverState.update({ where: { modelId: n }, data: { desired: "stopped" } });
    expect(await updateHost(t.db, { id: h.id, sshHost: "studio.lan" }, { events })).toMatchObject({ sshHost: "studio.lan" });
  });
});

describe("an ssh host's upstream modes each have their own field", () => {
  let events: EventBus;
  beforeEach(async () => {
    events = await createEventBus({ db: t.db, log: testLogger("hosts") });
  });
  afterEach(() => events.close());

  const tunnel = { name: "mac", linkKind: "ssh", sshHost: "mac.lan", upstreamMode: "tunnel", modelPorts: "8080-8099" } as const;

  it.each([
    ["a direct address in tunnel mode", { directAddress: "10.0.0.5" }, "directAddress", "applies to direct mode only (the address direct mode reaches an ssh host's models at); remove it or set upstreamMode to direct"],
    ["model ports with a switch to direct mode", { upstreamMode: "direct", modelPorts: "8080-8099" }, "modelPorts", "applies to tunnel mode only (the port range forwarded over ssh); remove it or set upstreamMode to tunnel"],
  ])("update refuses %s naming the field and what to do; nothing written, no event", async (_n, patch, field, message) => {
    const h = await upsertHost(t.db, tunnel, { events });
    const before = await snapshot(t.db);
    const eventsBefore = await t.db.event.count();
    expect(await serviceError(updateHost(t.db, { id: h.id, ...patch } as never, { events }))).toMatchObject({ code: "BAD_REQUEST", message: `${field}: ${message}`, issues: [{ path: field, message }] });
    expect(await snapshot(t.db)).toEqual(before);
    expect(await t.db.event.count()).toBe(eventsBefore);
  });

  it("a switch of mode by update clears the stored field of the mode left, and the event says so; and back", async () => {
    const h = await upsertHost(t.db, tunnel, { events });
    expect(await updateHost(t.db, { id: h.id, upstreamMode: "direct", directAddress: "10.0.0.5" }, { events })).toMatchObject({ upstreamMode: "direct", directAddress: "10.0.0.5", modelPorts: null });
    expect((await hostEvents(t)).at(-1)!.message).toBe("host mac updated (upstreamMode tunnel → direct, modelPorts 8080-8099 → none, directAddress none → 10.0.0.5)");
    expect(await updateHost(t.db, { id: h.id, upstreamMode: "tunnel" }, { events })).toMatchObject({ upstreamMode: "tunnel", directAddress: null, modelPorts: null });
    expect((await hostEvents(t)).at(-1)!.message).toBe("host mac updated (upstreamMode direct → tunnel, directAddress 10.0.0.5 → none)");
  });

  it("the form's switch of mode (an upsert without the hidden field) saves over the stored value of the other mode", async () => {
    const h = await upsertHost(t.db, tunnel, { events });
    const direct = await upsertHost(t.db, { id: h.id, name: "mac", linkKind: "ssh", sshHost: "mac.lan", upstreamMode: "direct", directAddress: "10.0.0.5" }, { events });
    expect(direct).toMatchObject({ upstreamMode: "direct", directAddress: "10.0.0.5", modelPorts: null });
    expect(await upsertHost(t.db, { id: h.id, name: "mac", linkKind: "ssh", sshHost: "mac.lan", upstreamMode: "tunnel", modelPorts: "8080-8089" }, { events })).toMatchObject({ upstreamMode: "tunnel", directAddress: null, modelPorts: "8080-8089" });
  });

  it("a host stored with both fields (before they were refused) loses the other mode's on its next update, which names it; it still lists and reads", async () => {
    const row = await t.db.host.create({ data: { name: "old-mac", linkKind: "ssh", sshHost: "mac.lan", upstreamMode: "direct", directAddress: "10.0.0.5", modelPorts: "8080-8099" } });
    expect(await getHost(t.db, row.id)).toMatchObject({ upstreamMode: "direct", directAddress: "10.0.0.5", modelPorts: "8080-8099" });
    expect((await listHosts(t.db)).map((h) => h.name)).toEqual(["old-mac"]);
    expect(await updateHost(t.db, { id: row.id, memoryBudgetMiB: 2048 }, { events })).toMatchObject({ upstreamMode: "direct", directAddress: "10.0.0.5", modelPorts: null, memoryBudgetMiB: 2048 });
    expect((await hostEvents(t)).at(-1)!.message).toBe("host old-mac updated (modelPorts 8080-8099 → none, memoryBudgetMiB none → 2048)");
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
