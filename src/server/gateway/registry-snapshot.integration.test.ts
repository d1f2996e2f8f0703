/**
 * The gateway's registry snapshot (fleet-adapter.ts) over a real fleet: a
 * migrated SQLite file, the local agent and the real llama-server with tiny
 * models. The adapter's registry reads are counted on the real database:
 * they compete with the servers a start-all is loading, so they happen when
 * something needs them, once per need.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "~/server/db/client";
import { fleetFixture, type FleetFixture } from "~/server/services/fleet/testing/fixture";
import { createFleetAdapter, type FleetAdapter } from "./fleet-adapter";

/** The real database, with the adapter's registry reads (model.findMany) counted, and the ids each read was limited to (null: every model). */
function countingReads(db: Db): { db: Db; reads: () => number; limitedTo: (string[] | null)[] } {
  let reads = 0;
  const limitedTo: (string[] | null)[] = [];
  const model = new Proxy(db.model, {
    get(target, key) {
      if (key !== "findMany") return Reflect.get(target, key) as unknown;
      return (...args: Parameters<Db["model"]["findMany"]>) => {
        reads += 1;
        const ids = (args[0]?.where?.id as { in?: string[] } | undefined)?.in;
        limitedTo.push(ids ? [...ids] : null);
        return target.findMany(...args);
      };
    },
  });
  const proxied = new Proxy(db, { get: (target, key) => (key === "model" ? model : (Reflect.get(target, key) as unknown)) });
  return { db: proxied, reads: () => reads, limitedTo };
}

describe("gateway registry snapshot", () => {
  let f: FleetFixture;
  let adapter: FleetAdapter;
  let counter: ReturnType<typeof countingReads>;

  beforeAll(async () => {
    f = await fleetFixture();
    for (const name of ["snap-a", "snap-b", "snap-c", "snap-d"]) await f.addModel(name);
    counter = countingReads(f.t.db);
    adapter = createFleetAdapter({ db: counter.db, fleet: f.fleet, events: f.events, maxAgeMs: 60_000 });
  });
  afterAll(async () => {
    adapter?.close();
    await f?.dispose();
  });

  it("a start-all's state changes are not read while no request looks; the next request reads once and sees every model ready", async () => {
    expect((await adapter.models()).map((m) => m.state)).toEqual(["stopped", "stopped", "stopped", "stopped"]);
    const before = counter.reads();
    const started = await f.fleet.startAll();
    expect(started.map((r) => r.state)).toEqual(["ready", "ready", "ready", "ready"]);
    await f.events.flush();
    await sleep(200); // past the adapter's event batching (25 ms): a read it would make has begun
    expect(counter.reads()).toBe(before);
    expect((await adapter.models()).map((m) => m.state)).toEqual(["ready", "ready", "ready", "ready"]);
    expect(counter.reads()).toBe(before + 1);
  });

  it("a request waiting for a change is woken after the change, and then sees it", async () => {
    const snapB = (await adapter.models()).find((m) => m.name === "snap-b")!;
    const woken = adapter.changed(10_000).then(() => performance.now());
    const stopped = f.fleet.stop(snapB.id).then(() => performance.now());
    const [wokeAt, stoppedAt] = await Promise.all([woken, stopped]);
    expect(wokeAt).toBeLessThan(stoppedAt + 5_000); // by the change, not by the 10 s timeout
    await waitForState(adapter, "snap-b", "stopped");
  });

  it("after a model's own events (a stop), the next look reads that model's row alone and sees it stopped, the others as they were", async () => {
    const models = await adapter.models();
    const snapA = models.find((m) => m.name === "snap-a")!;
    const others = models.filter((m) => m.id !== snapA.id).map((m) => [m.name, m.state]);
    expect(snapA.state).toBe("ready");
    const before = counter.reads();
    await f.fleet.stop(snapA.id);
    await f.events.flush();
    const after = await adapter.models();
    expect(after.find((m) => m.id === snapA.id)?.state).toBe("stopped");
    expect(after.filter((m) => m.id !== snapA.id).map((m) => [m.name, m.state])).toEqual(others);
    expect(after.map((m) => m.name)).toEqual(["snap-a", "snap-b", "snap-c", "snap-d"]);
    expect(counter.reads()).toBe(before + 1);
    expect(counter.limitedTo.at(-1)).toEqual([snapA.id]);
  });

  it("a registry edit that makes no fleet event is seen once the snapshot is past its age; with no edit, only the fingerprint is read", async () => {
    const aged = countingReads(f.t.db);
    const quick = createFleetAdapter({ db: aged.db, fleet: f.fleet, events: f.events, maxAgeMs: 50 });
    try {
      expect((await quick.models()).find((m) => m.name === "snap-c")?.alias).toBeNull();
      const afterFirst = aged.reads();
      // Nothing changes: requests past the age check the fingerprint and keep the snapshot.
      for (let i = 0; i < 5; i++) {
        await sleep(80);
        await quick.models();
      }
      await sleep(50); // the last check, begun in the background, has ended
      expect(aged.reads()).toBe(afterFirst);
      // An edit the fleet does not announce (the model form saves the row).
      await f.t.db.model.update({ where: { name: "snap-c" }, data: { alias: "snap-c-alias" } });
      const deadline = Date.now() + 5_000;
      while ((await quick.models()).find((m) => m.name === "snap-c")?.alias !== "snap-c-alias") {
        if (Date.now() > deadline) throw new Error("the edit was not seen within 5 s");
        await sleep(20);
      }
      expect(aged.reads()).toBe(afterFirst + 1);
    } finally {
      quick.close();
      await f.t.db.model.update({ where: { name: "snap-c" }, data: { alias: null } });
    }
  });

  it("fresh reads asked for while one runs share the single read that starts after it", async () => {
    const before = counter.reads();
    const all = await Promise.all([1, 2, 3, 4, 5].map(() => adapter.models({ fresh: true })));
    for (const models of all) expect(models.map((m) => m.name)).toEqual(["snap-a", "snap-b", "snap-c", "snap-d"]);
    // The first call's read, then one read for the four calls made while it ran.
    expect(counter.reads() - before).toBe(2);
  });
});

async function waitForState(adapter: FleetAdapter, name: string, state: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = (await adapter.models()).find((x) => x.name === name);
    if (m?.state === state) return;
    if (Date.now() > deadline) throw new Error(`${name} is ${m?.state}, not ${state}`);
    await adapter.changed(500);
  }
}
