/**
 * The routers through `createCaller` on a real runtime (SQLite file, local
 * link, real llama-server): input validation with field errors, service
 * errors mapped to tRPC codes, and the fleet's procedures end to end,
 * including the live event subscription.
 */
import { truncate } from "node:fs/promises";
import path from "node:path";
import { TRPCError } from "@trpc/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDirs } from "../../../host-agent/test/harness/fixtures";
import { llamaServerBin } from "../../../host-agent/test/harness/llama-server";
import { freePort } from "../../../host-agent/test/harness/ports";
import { tinyModel } from "../../../host-agent/test/harness/tiny-model";
import { type AppRuntime } from "../runtime";
import { createCaller } from "./root";
import { createContextInner } from "./trpc";
import { callerRuntime, type CallerRuntime } from "../services/fleet/testing/caller-runtime";

let dirs: TestDirs;
let runtime: AppRuntime;
let caller: ReturnType<typeof createCaller>;

async function rejection(p: Promise<unknown>): Promise<TRPCError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TRPCError);
  return err as TRPCError;
}

let fx: CallerRuntime;

beforeAll(async () => {
  fx = await callerRuntime("synapse-routers-", "routers");
  ({ dirs, runtime, caller } = fx);
});

afterAll(async () => {
  await fx?.dispose();
});

describe("routers via createCaller", () => {
  it("models.create: zod field errors for bad input, nothing written", async () => {
    const before = await runtime.db.model.count();
    const err = await rejection(caller.models.create({ name: "", filePath: "not-absolute.txt", port: 80 }));
    expect(err.code).toBe("BAD_REQUEST");
    const text = err.message;
    expect(text).toMatch(/port/);
    expect(text).toMatch(/filePath/);
    expect(await runtime.db.model.count()).toBe(before);
  });

  it("service errors keep their meaning: the app's own port and a taken port", async () => {
    const file = await tinyModel(dirs.modelRoot, "ports.gguf");
    const own = await rejection(caller.models.create({ name: "own-port", filePath: file, port: 3999 }));
    expect(own.code).toBe("BAD_REQUEST");
    expect(own.message).toMatch(/port/);
    const port = await freePort();
    await caller.models.create({ name: "first", filePath: file, port });
    const taken = await rejection(caller.models.create({ name: "second", filePath: file, port }));
    expect(taken.code).toBe("CONFLICT");
    expect(taken.message).toMatch(/port/);
    await caller.models.delete({ id: (await runtime.db.model.findUniqueOrThrow({ where: { name: "first" } })).id });
  });

  it("settings.update refuses out-of-range values and keeps the old ones", async () => {
    const before = await caller.settings.get();
    const err = await rejection(caller.settings.update({ ctxSize: -5, batchSize: 0 }));
    expect(err.code).toBe("BAD_REQUEST");
    expect(await caller.settings.get()).toEqual(before);
  });

  it("hosts.pinKey needs a fingerprint in ssh-keygen's form", async () => {
    const [host] = await caller.hosts.list();
    const err = await rejection(caller.hosts.pinKey({ id: host!.id, fingerprint: "MD5:aa:bb" }));
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.message).toMatch(/SHA256/);
  });

  it("hosts.update changes the fields given and keeps the rest; a host it would make invalid is refused naming the field, nothing written; an unknown id is NOT_FOUND", async () => {
    const [listed] = await caller.hosts.list();
    const before = await caller.hosts.get({ id: listed!.id });
    const { updatedAt: _u, ...kept } = before;
    const budget = await caller.hosts.update({ id: before.id, memoryBudgetMiB: 1_000_000, llamaServerBin: "/opt/llama/bin/llama-server" });
    expect(budget).toMatchObject({ ...kept, memoryBudgetMiB: 1_000_000, llamaServerBin: "/opt/llama/bin/llama-server" });
    const events = await runtime.db.event.count({ where: { kind: "action", hostId: before.id } });

    const invalid = await rejection(caller.hosts.update({ id: before.id, linkKind: "ssh" }));
    expect(invalid.code).toBe("BAD_REQUEST");
    expect(invalid.message).toMatch(/^sshHost: is required for an ssh host/);
    const badField = await rejection(caller.hosts.update({ id: before.id, modelPorts: "80-99999" }));
    expect(badField.code).toBe("BAD_REQUEST");
    expect(badField.message).toMatch(/modelPorts/);
    const missing = await rejection(caller.hosts.update({ id: "no-such-host", memoryBudgetMiB: 64 }));
    expect(missing.code).toBe("NOT_FOUND");
    expect(missing.message).toBe("no host with id no-such-host");
    expect(await caller.hosts.get({ id: before.id })).toEqual(budget);
    expect(await runtime.db.event.count({ where: { kind: "action", hostId: before.id } })).toBe(events);

    // pinKey is such an update, the fingerprint alone: this host is local (no ssh link pins a key), so it is refused.
    const fingerprint = `SHA256:${"Ab1+".repeat(10)}xyz`;
    const pinned = await rejection(caller.hosts.pinKey({ id: before.id, fingerprint }));
    expect(pinned.code).toBe("BAD_REQUEST");
    expect(pinned.message).toBe("hostKeyFingerprint: applies to ssh hosts only (the host key the ssh link pins); remove it or set linkKind to ssh");
    expect(await caller.hosts.get({ id: before.id })).toEqual(budget);

    // null clears: the host as it was.
    const { updatedAt: _v, ...restored } = await caller.hosts.update({ id: before.id, memoryBudgetMiB: null, llamaServerBin: null, hostKeyFingerprint: null });
    expect(restored).toEqual(kept);
    expect(await runtime.db.event.count({ where: { kind: "action", hostId: before.id } })).toBe(events + 1);
  });

  it("hosts.list says what the fleet knows of each host's agent: this checkout's agent lacks nothing", async () => {
    await caller.servers.status();
    await runtime.fleet.reconcile();
    const [host] = await caller.hosts.list();
    expect(host!.agent).toMatchObject({ missing: [], advice: null });
    expect(host!.agent!.features).toContain("stop-cause");
  });

  it("servers: start-all, status, live events, logs, command preview, stop-all", async () => {
    const file = await tinyModel(dirs.modelRoot, "live.gguf");
    const model = await caller.models.create({ name: "live", filePath: file, port: await freePort(), enabled: true });
    const abort = new AbortController();
    const seen: string[] = [];
    const listening = createCaller(createContextInner({ runtime }), { signal: abort.signal });
    const iterable = await listening.servers.events({ modelIds: [model.id] });
    const reading = (async () => {
      // Server-side, each item is tRPC's tracked envelope: [id, data, marker].
      for await (const [id, data] of iterable as unknown as AsyncIterable<[string, { type: string; state?: string | null }]>) {
        expect(id).toMatch(/^\d+(\.\d+)?$/);
        if (data.type === "event" && data.state) seen.push(data.state);
        if (seen.includes("ready")) break;
      }
    })();
    const results = await caller.servers.startAll({ wait: true });
    expect(results).toEqual([expect.objectContaining({ name: "live", state: "ready", error: null })]);
    await Promise.race([reading, new Promise((_, reject) => setTimeout(() => reject(new Error(`no ready event; saw ${seen.join(",")}`)), 10_000))]);
    abort.abort();
    expect(seen).toEqual(expect.arrayContaining(["starting", "ready"]));

    const row = (await caller.servers.status()).find((s) => s.name === "live")!;
    expect(row).toMatchObject({ state: "ready", desired: "running", enabled: true });
    expect(row.pid).toBeGreaterThan(0);

    const logs = await caller.servers.logs({ id: model.id, lines: 50 });
    expect(logs.lines.length).toBeGreaterThan(0);

    const preview = await caller.models.commandPreview({ id: model.id });
    expect(preview.args).toEqual(expect.arrayContaining(["--model", file, "--port", String(model.port)]));
    expect(preview.binary).toBe(llamaServerBin());
    expect(preview.note).toBeNull();

    const stopped = await caller.servers.stopAll();
    expect(stopped.every((s) => s.state === "stopped")).toBe(true);

    // The same run in the event log: newest first, with the model's and host's names and the stop's cause.
    const history = await caller.servers.history({ modelId: model.id, kind: "state" });
    expect(history.events.map((e) => e.state)).toEqual(["stopped", "stopping", "ready", "starting"]);
    expect(history.events[0]).toMatchObject({ modelName: "live", hostName: expect.any(String), data: expect.objectContaining({ cause: "requested" }) });
    expect(Number(history.liveFrom)).toBeGreaterThanOrEqual(history.events[0]!.id);
    const err = await rejection(caller.servers.history({ limit: 501 }));
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.message).toMatch(/limit[\s\S]*must be at most 500/);
  });

  it("models.list of a model whose file llama-server cannot load: lastErrorHeadline is one line, the reason and llama-server's own error, not the run's header; lastError as before", async () => {
    const file = await tinyModel(dirs.modelRoot, "cut.gguf");
    const model = await caller.models.create({ name: "cut", filePath: file, port: await freePort(), enabled: true });
    const calm = await caller.models.create({ name: "never-ran", filePath: await tinyModel(dirs.modelRoot, "never-ran.gguf"), port: await freePort() });
    // A file damaged after it was saved: its header reads, its tensors run past its end.
    await truncate(file, 200_000);
    const started = await caller.servers.start({ id: model.id });
    expect(started.state, started.error ?? "").toBe("failed");

    const listed = await caller.models.list({});
    const server = listed.find((m) => m.id === model.id)!.server!;
    // What a script printing the error used to get first: the reason, then the log's tail from this run's header on.
    expect(server.lastError).toMatch(/^exited with code 1 while loading; last log lines:\n=== synapse host-agent: starting cut at /);
    const logLines = server.lastError!.split("\n").slice(1);
    const headline = server.lastErrorHeadline!;
    expect(headline).toMatch(/^exited with code 1 while loading; the log says: /);
    expect(headline).not.toContain("\n");
    // The log line it names is llama-server's error, one of lastError's lines, not its header or a warning.
    const named = headline.slice("exited with code 1 while loading; the log says: ".length);
    expect(logLines.some((l) => l.includes(named.replace(/…$/, "")))).toBe(true);
    expect(named).toMatch(/^llama_model_load: error loading model: .*(file bounds|corrupted)/);
    expect(listed.find((m) => m.id === calm.id)!.server).toMatchObject({ lastError: null, lastErrorHeadline: null });
    // models.get says the same.
    expect((await caller.models.get({ id: model.id })).server?.lastErrorHeadline).toBe(headline);
    await caller.servers.stop({ id: model.id });
  });
});

describe("metrics.* via createCaller", () => {
  it("bad input is BAD_REQUEST naming the field; a model that never ran has no points and no progress", async () => {
    const err = await rejection(caller.metrics.model({ id: "x", range: "week" } as never));
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.message).toContain("range");
    const host = await runtime.db.host.findFirstOrThrow();
    const m = await runtime.db.model.create({ data: { name: "metrics-idle", hostId: host.id, filePath: path.join(dirs.modelRoot, "none.gguf"), port: await freePort() } });
    expect(await caller.metrics.model({ id: m.id })).toEqual({ range: "hour", stepMs: 5000, points: [] });
    expect(await caller.metrics.model({ id: m.id, range: "day" })).toEqual({ range: "day", stepMs: 60_000, points: [] });
    expect(await caller.metrics.loadProgress({ id: m.id })).toBeNull();
    const fleet = await caller.metrics.fleet();
    expect(fleet.intervalMs).toBe(5000);
    expect(fleet.progress[m.id]).toBeUndefined();
    await runtime.db.model.delete({ where: { id: m.id } });
  });
});
