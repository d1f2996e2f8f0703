/**
 * Plans before spawns, for real: a host given a small memory budget by hand (the hosts form's service),
 * three models of about 22 MiB each written by the project's GGUF writer, the real llama-server and a
 * real SQLite file. START ALL ENABLED starts what fits, in priority order, and refuses the rest with
 * numbers a person can act on, spawning nothing for it; `force` starts it anyway and says so in the event
 * log; a model without an estimate is started with a note.
 */
import { stat } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { tinyModel } from "../../../../host-agent/test/harness/tiny-model";
import { freePort } from "../../../../host-agent/test/harness/ports";
import { startAllResponse } from "~/server/http/start-all-body";
import { estimateFromForm } from "~/server/services/memory/form-estimate";
import { estimateForModel } from "~/server/services/memory/estimate";
import { chargedBytes } from "~/server/services/memory/plan";
import { getSettings } from "~/server/services/registry/settings";
import { upsertHost } from "~/server/services/registry/hosts";
import { fleetFixture, type FleetFixture } from "./testing/fixture";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

/** About 22 MiB of f32 weights: 2 layers 512 wide, feed-forward 1024. */
const SHAPE = { embedding: 512, layers: 2, heads: 4, feedForward: 1024, contextLength: 512 };

async function addSizedModel(f: FleetFixture, name: string, extra: { startPriority?: number; knownSize?: boolean } = {}) {
  const file = await tinyModel(f.dirs.modelRoot, `${name}.gguf`, { ...SHAPE, seed: name.length });
  const sizeBytes = (await stat(file)).size;
  // Discovery stores the file's size (all shards); a model saved by hand before discovery has none.
  return f.t.db.model.create({ data: { name, hostId: f.host.id, filePath: file, port: await freePort(), enabled: true, sizeBytes: extra.knownSize === false ? null : sizeBytes, startPriority: extra.startPriority ?? null } });
}

describe("start plans against a host's memory budget", () => {
  it("start-all on a 56 MiB host starts what fits in priority order and refuses the rest with its numbers; force overrides", async () => {
    const f = (fx = await fleetFixture());
    const host = await upsertHost(f.t.db, { id: f.host.id, name: f.host.name, linkKind: "local", memoryBudgetMiB: 56 });
    expect(host.memoryBudgetMiB).toBe(56);
    const alpha = await addSizedModel(f, "alpha");
    const beta = await addSizedModel(f, "beta");
    const gamma = await addSizedModel(f, "gamma", { startPriority: 5 });
    const unsized = await addSizedModel(f, "unsized", { knownSize: false });
    expect(alpha.sizeBytes).toBeGreaterThan(20 * 1024 ** 2);
    expect(alpha.sizeBytes! * 3).toBeGreaterThan(56 * 1024 ** 2);

    const results = await f.fleet.startAll({ wait: true });
    // Asked order: priority first (gamma), then the registry's (alpha, beta, unsized).
    expect(results.map((r) => [r.name, r.state, r.memory?.verdict])).toEqual([
      ["gamma", "ready", "fits"],
      ["alpha", "ready", "fits"],
      ["beta", "stopped", "refused"],
      ["unsized", "ready", "unchecked"],
    ]);
    const refused = results.find((r) => r.name === "beta")!;
    expect(refused.error).toMatch(/^beta needs 2\d\.\d MiB \(weights 2\d\.\d, KV cache \d+\.\d, compute \d+\.\d\); local has 1\d\.\d of 56\.0 MiB left; stop (alpha|gamma) \(2\d\.\d MiB\)$/);
    expect(refused.memory).toMatchObject({ budgetBytes: 56 * 1024 ** 2, neededBytes: beta.sizeBytes });
    // What it is refused for stays (alpha and gamma are `always` models): waiting would not make room.
    expect(refused.memory?.mayFitLater).toBe(false);
    expect(refused.pid).toBeNull();
    expect(results.find((r) => r.name === "unsized")!.memory!.message).toMatch(/^started without a memory check: no memory estimate for unsized: its shape was never read; run discovery again/);

    // Nothing was spawned for it, and nothing will be: it is not wanted running.
    const status = await f.fleet.status();
    expect(status.find((s) => s.name === "beta")).toMatchObject({ state: "stopped", desired: "stopped", pid: null, lastError: refused.error });
    await f.fleet.reconcile(f.host.id);
    expect((await f.fleet.status()).find((s) => s.name === "beta")!.state).toBe("stopped");
    const agentStatus = await (await f.links.get(f.host)).call("status", {});
    expect(agentStatus.map((s) => s.id).sort()).toEqual(["alpha", "gamma", "unsized"]);

    // What REST and the CLI answer: 207, one refused among the failed.
    const rest = startAllResponse(results, true);
    expect(rest).toMatchObject({ status: 207, body: { ok: false, started: 3, failed: 1, refused: 1 } });

    const events = (await f.t.db.event.findMany({ where: { modelId: { in: [beta.id, unsized.id] } }, orderBy: { id: "asc" } })).map((e) => e.message);
    expect(events).toContain(`beta: not started: ${refused.error}`);
    expect(events.some((m) => m.startsWith("unsized: started without a memory check: no memory estimate for unsized: "))).toBe(true);

    // A single start is planned the same way; force starts it and the event log says so.
    const again = await f.fleet.start(beta.id);
    expect(again).toMatchObject({ state: "stopped", memory: { verdict: "refused" } });
    const forced = await f.fleet.start(beta.id, { force: true });
    expect(forced).toMatchObject({ state: "ready", memory: { verdict: "forced" } });
    const forcedEvents = (await f.t.db.event.findMany({ where: { modelId: beta.id, kind: "action" }, orderBy: { id: "asc" } })).map((e) => e.message);
    expect(forcedEvents.some((m) => /^beta: started by force over the memory budget: beta needs 2\d\.\d MiB/.test(m))).toBe(true);

    // Stopping one makes room for the next start without force.
    await f.fleet.stop(beta.id);
    await f.fleet.stop(gamma.id);
    expect(await f.fleet.start(beta.id)).toMatchObject({ state: "ready", memory: { verdict: "fits" } });
  });

  it("the dashboard's memory bar: what runs, what start-all would add and refuse; the model page's estimate from unsaved values", async () => {
    const f = (fx = await fleetFixture());
    await upsertHost(f.t.db, { id: f.host.id, name: f.host.name, linkKind: "local", memoryBudgetMiB: 56 });
    const alpha = await addSizedModel(f, "alpha");
    const beta = await addSizedModel(f, "beta");
    const gamma = await addSizedModel(f, "gamma");
    await f.t.db.model.update({ where: { id: gamma.id }, data: { enabled: false } });
    expect((await f.fleet.start(gamma.id)).state).toBe("ready");

    const [bar] = await f.fleet.memoryOverview();
    expect(bar).toMatchObject({ host: "local", budgetBytes: 56 * 1024 ** 2, basis: "set by the user", usedBytes: gamma.sizeBytes, startAllBytes: alpha.sizeBytes });
    expect(bar!.segments.map((s) => [s.name, s.kind, s.bytes])).toEqual([
      ["gamma", "running", gamma.sizeBytes],
      ["alpha", "start-all", alpha.sizeBytes],
    ]);
    expect(bar!.refused.map((r) => r.name)).toEqual(["beta"]);
    expect(bar!.refused[0]!.message).toMatch(/^beta needs \d+\.\d MiB .*; local has \d+\.\d of 56\.0 MiB left; stop /);
    expect(beta.id).toBeTruthy();

    // Unsaved form values over the saved model: nothing is written.
    const before = await f.t.db.model.findUniqueOrThrow({ where: { id: alpha.id } });
    const e = await estimateFromForm(f.t.db, { id: alpha.id, ctxSize: 512, parallel: 2, extraFlags: [{ flag: "--cache-type-k", value: "q8_0" }] }, (m) => f.fleet.estimate(m));
    expect(e.estimate).toMatchObject({ weightsBytes: alpha.sizeBytes, totalBytes: expect.any(Number) });
    expect(await f.t.db.model.findUniqueOrThrow({ where: { id: alpha.id } })).toEqual(before);
    await expect(estimateFromForm(f.t.db, { id: "no-such-model" }, (m) => f.fleet.estimate(m))).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("a discovered model is planned from its stored shape: weights, KV cache and compute as the estimator gives them", async () => {
    const f = (fx = await fleetFixture());
    await tinyModel(f.dirs.modelRoot, "shaped.gguf", { ...SHAPE, seed: 7 });
    const report = await f.fleet.discover(f.host.id);
    expect(report.added.map((a) => a.name)).toHaveLength(1);
    // A port of its own: discovery numbers from 8080, which another server on this machine may hold.
    const row = await f.t.db.model.update({ where: { id: report.added[0]!.id }, data: { enabled: true, port: await freePort() } });
    expect(row.shape).toBeTruthy();
    const estimate = estimateForModel(row, await getSettings(f.t.db));
    if ("unavailable" in estimate) throw new Error(estimate.unavailable);
    expect(estimate.kvCacheBytes).toBeGreaterThan(0);
    expect(estimate.computeBytes).toBeGreaterThan(0);

    const [started] = await f.fleet.startAll({ wait: true });
    expect(started).toMatchObject({ state: "ready", memory: { verdict: "fits", neededBytes: chargedBytes(estimate) } });
    const [bar] = await f.fleet.memoryOverview();
    expect(bar!.segments).toEqual([expect.objectContaining({ name: row.name, kind: "running", bytes: chargedBytes(estimate), estimate: expect.objectContaining({ kvCacheBytes: estimate.kvCacheBytes }) })]);
  });
});
