/**
 * The idle unload's timer on the model's ServerEntry, through the real fleet
 * adapter and unloader. Stand-ins: the registry (one ready on-demand model),
 * the fleet's stop (recorded, not issued) and the event bus (silent); the
 * sweep interval is a minute, so only the entry's timer can unload on time.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { Db } from "~/server/db/client";
import type { EventBus } from "~/server/services/fleet/events";
import type { Fleet } from "~/server/services/fleet/fleet";
import { ServerEntry } from "~/server/services/fleet/server-entry";
import { createFleetAdapter, type FleetAdapter } from "./fleet-adapter";
import type { GatewayFleet, GatewayModel } from "./fleet-port";
import { createIdleUnloader, type IdleUnloader } from "./idle-unload";

const IDLE_MS = 300;

const model: GatewayModel = {
  id: "m1", name: "lazy", alias: null, hostId: "h1", host: "local", upstream: { host: "127.0.0.1", port: 1 }, unreachableWhy: null, serverApiKey: null, enabled: true,
  loadPolicy: "on-demand", desired: "running", state: "ready", lastError: null, nextRestartAt: null, autoRestart: true, stateWrittenAt: null, parallel: 1, concurrency: 1, queueLimit: 8, idleMs: IDLE_MS, readinessDeadlineMs: 30_000, createdS: 0, changedSinceFailure: false,
};

const standInEvents = {
  async *subscribe({ signal }: { signal: AbortSignal }) {
    await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
  },
} as unknown as EventBus;

let adapter: FleetAdapter | undefined;
let unloader: IdleUnloader | undefined;
afterEach(() => {
  unloader?.close();
  adapter?.close();
});

function setUp() {
  const entry = new ServerEntry(model.id, model.hostId, model.name);
  const standInFleet = { liveEntry: () => entry } as unknown as Fleet;
  adapter = createFleetAdapter({ db: {} as Db, fleet: standInFleet, events: standInEvents });
  const stops: { at: number; cause: string }[] = [];
  // The registry's view of the model: stopped once the unloader stops it; a test may load it again.
  const shown: GatewayModel = { ...model };
  const port: GatewayFleet = {
    ...adapter,
    models: async () => [shown],
    stop: async (_id, cause) => {
      stops.push({ at: Date.now(), cause });
      shown.state = "stopped";
    },
  };
  unloader = createIdleUnloader({ fleet: port, sweepMs: 60_000 });
  return { entry, port, stops, shown };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("idle unload timer on the ServerEntry", () => {
  it("a sweep arms the entry's timer at the deadline; it unloads then with cause idle, not a sweep interval later", async () => {
    const { entry, stops } = setUp();
    const t0 = Date.now();
    await unloader!.sweep();
    expect(entry.idleUnloadAt).toBeGreaterThanOrEqual(t0 + IDLE_MS);
    expect(entry.idleTimer).not.toBeNull();
    for (let i = 0; i < 100 && stops.length === 0; i++) await sleep(20);
    expect(stops.map((s) => s.cause)).toEqual(["idle"]);
    expect(stops[0]!.at - t0).toBeGreaterThanOrEqual(IDLE_MS);
    // Stopped: no countdown left on the entry.
    await sleep(20);
    expect([entry.idleUnloadAt, entry.idleTimer]).toEqual([null, null]);
  });

  it("a stop only recorded (its host cannot be reached: still ready by its last known state, wanted stopped) is not asked again, and shows no countdown", async () => {
    const { entry, port, stops, shown } = setUp();
    // The registry's stop while the host is away: recorded (desired stopped), the state the last known one.
    port.stop = async (_id, cause) => {
      stops.push({ at: Date.now(), cause });
      shown.desired = "stopped";
    };
    await unloader!.sweep();
    for (let i = 0; i < 100 && stops.length === 0; i++) await sleep(20);
    expect(stops.map((s) => s.cause)).toEqual(["idle"]);
    // A trial saw "unloaded after its idle time" every 30 s, and the countdown start over, until the host was back.
    await sleep(IDLE_MS * 2);
    await unloader!.sweep();
    await sleep(IDLE_MS + 50);
    expect(stops).toHaveLength(1);
    expect([entry.idleUnloadAt, entry.idleTimer]).toEqual([null, null]);
  });

  it("a request served before the deadline clears the countdown and its timer: no unload while it is in flight", async () => {
    const { entry, port, stops } = setUp();
    await unloader!.sweep();
    const req = port.beginRequest(model.id);
    req.served();
    expect([entry.inFlight, entry.idleUnloadAt, entry.idleTimer]).toEqual([1, null, null]);
    await sleep(IDLE_MS * 2);
    await unloader!.sweep();
    expect(stops).toEqual([]);
    expect(entry.idleUnloadAt).toBeNull();
    req.end();
    // Ended: the next sweep counts from the end.
    await unloader!.sweep();
    expect(entry.idleUnloadAt).toBe(entry.lastUsedAt! + IDLE_MS);
  });

  it("a request refused while the countdown runs leaves its deadline where it was; in flight, it holds off an unload that comes due meanwhile", async () => {
    const { entry, port, stops } = setUp();
    const served = port.beginRequest(model.id);
    served.served();
    served.end();
    await unloader!.sweep();
    const deadline = entry.idleUnloadAt;
    expect(deadline).toBe(entry.lastUsedAt! + IDLE_MS);
    await sleep(IDLE_MS / 3);
    const refused = port.beginRequest(model.id);
    refused.end();
    await unloader!.sweep();
    expect([entry.idleUnloadAt, entry.lastUsedAt! + IDLE_MS]).toEqual([deadline, deadline]);
    // In flight across the deadline (waiting for a place, say): the timer fires, and the sweep it makes unloads nothing.
    const waiting = port.beginRequest(model.id);
    await sleep(deadline! - Date.now() + 50);
    expect([stops, entry.idleUnloadAt]).toEqual([[], null]);
    // Ended unserved: the sweep after it (the gateway's idle.ended) counts from the last use, which is past due.
    waiting.end();
    await unloader!.sweep();
    expect(stops.map((s) => s.cause)).toEqual(["idle"]);
  });

  it("a model loaded again long after its last use (its Start button after an idle unload) counts its idle time from the load, not from that use", async () => {
    const { entry, port, stops, shown } = setUp();
    const req = port.beginRequest(model.id);
    req.served();
    req.end();
    await unloader!.sweep();
    for (let i = 0; i < 100 && stops.length === 0; i++) await sleep(20);
    expect(stops.map((s) => s.cause)).toEqual(["idle"]);
    const lastUse = entry.lastUsedAt!;
    await sleep(IDLE_MS);
    // The periodic sweep sees it stopped; then it is started again (no request).
    await unloader!.sweep();
    const startedAt = Date.now();
    shown.state = "ready";
    await unloader!.sweep();
    expect(stops).toHaveLength(1);
    expect(entry.lastUsedAt).toBe(lastUse);
    expect(entry.idleUnloadAt).toBeGreaterThanOrEqual(startedAt - 20 + IDLE_MS);
  });
});
