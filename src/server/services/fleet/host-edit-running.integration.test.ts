/**
 * Host edits while a model runs, against the real fleet, local agent and
 * llama-server: an edit the registry lets through reconnects to the same
 * agent, which re-adopts the server; the edit it refuses (a local host's
 * rename: its agent's state folder is named after the host) would have left
 * the server unwatched while the fleet counted it crashed and tried to start
 * it again on its held port.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { updateHost } from "~/server/services/registry/hosts";
import { serviceError } from "~/server/services/registry/test-support";
import { fleetFixture, pidsRunning, type FleetFixture } from "./testing/fixture";

let f: FleetFixture;
beforeEach(async () => {
  f = await fleetFixture();
});
afterEach(async () => {
  await f.dispose();
});

describe("editing the local host while its model runs (real agent, real llama-server)", () => {
  it("its binary: a new link to the same agent, which re-adopts the server; its rename is refused and the server stays watched", async () => {
    const m = await f.addModel("m");
    expect((await f.fleet.start(m.id, { wait: true })).state).toBe("ready");
    const [pid] = await pidsRunning(m.filePath);
    const linkBefore = f.links.peek(f.host.id);
    const watched = async () => (await f.fleet.status()).find((v) => v.modelId === m.id);

    // Set to the binary it already uses: the row's connection fields change, so the pool opens a new link.
    await updateHost(f.t.db, { id: f.host.id, llamaServerBin: f.bin }, { events: f.events });
    await f.fleet.reconcile(f.host.id);
    expect(f.links.peek(f.host.id)).not.toBe(linkBefore);
    expect(await watched()).toMatchObject({ state: "ready", pid });
    expect(await pidsRunning(m.filePath)).toEqual([pid]);

    const err = await serviceError(updateHost(f.t.db, { id: f.host.id, name: "box" }, { events: f.events }));
    expect(err).toMatchObject({ code: "CONFLICT", issues: [{ path: "name", message: expect.stringContaining("models on host local are running: m (ready); stop them first, then rename local to box") }] });
    await f.fleet.reconcile(f.host.id);
    expect(await watched()).toMatchObject({ state: "ready", pid, lastError: null });
    expect(await f.t.db.event.count({ where: { modelId: m.id, message: { contains: "no one watched" } } })).toBe(0);

    // Stopped, the rename saves and the next start is the new agent's.
    await f.fleet.stop(m.id);
    expect(await updateHost(f.t.db, { id: f.host.id, name: "box" }, { events: f.events })).toMatchObject({ name: "box" });
    expect((await f.fleet.start(m.id, { wait: true })).state).toBe("ready");
    await f.fleet.stop(m.id);
  }, 90_000);
});
