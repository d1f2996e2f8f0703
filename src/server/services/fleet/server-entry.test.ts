import { describe, expect, it } from "vitest";
import { sameProcess, ServerEntry, type ServerResult } from "./server-entry";

describe("ServerEntry", () => {
  it("numbers commands: only the last accepted one is current", () => {
    const e = new ServerEntry("id", "host", "alpha");
    const a = e.nextCommand();
    expect(e.isCurrent(a)).toBe(true);
    const b = e.nextCommand();
    expect(e.isCurrent(a)).toBe(false);
    expect(e.isCurrent(b)).toBe(true);
  });

  it("an operation leaves the slot when it settles, unless a newer one took it", async () => {
    const e = new ServerEntry("id", "host", "alpha");
    let finish!: (r: ServerResult) => void;
    const first = e.track({ kind: "start", seq: e.nextCommand(), promise: new Promise((r) => (finish = r)) });
    expect(e.busy).toBe(true);
    const second = e.track({ kind: "stop", seq: e.nextCommand(), promise: new Promise(() => undefined) });
    finish({ modelId: "id", name: "alpha", host: "h", port: 1, state: "ready", pid: 1, error: null });
    await first.promise;
    await Promise.resolve();
    expect(e.op).toBe(second);
  });

  it("counts gateway requests: in flight until each ends (once); last used at the latest served request's start or end; no idle countdown (nor its timer) once one is served", () => {
    const e = new ServerEntry("id", "host", "alpha");
    expect([e.inFlight, e.lastUsedAt, e.idleUnloadAt]).toEqual([0, null, null]);
    const a = e.beginRequest();
    a.served(1_000);
    e.idleUnloadAt = 5_000;
    e.idleTimer = setTimeout(() => expect.fail("a request's being served must clear the idle timer"), 0);
    const b = e.beginRequest();
    b.served(1_100);
    expect(e.idleTimer).toBeNull();
    expect([e.inFlight, e.lastUsedAt, e.idleUnloadAt]).toEqual([2, 1_100, null]);
    a.end(1_200);
    a.end(1_300);
    expect([e.inFlight, e.lastUsedAt]).toEqual([1, 1_200]);
    b.end(1_400);
    expect([e.inFlight, e.lastUsedAt]).toEqual([0, 1_400]);
  });

  it("a request that is never served (refused, or its client left while it waited) is counted in flight, and leaves last use and the idle countdown as they were", () => {
    const e = new ServerEntry("id", "host", "alpha");
    const first = e.beginRequest();
    first.served(1_000);
    first.end(1_050);
    e.idleUnloadAt = 61_050;
    const timer = setTimeout(() => undefined, 60_000);
    e.idleTimer = timer;
    const refused = e.beginRequest();
    expect([e.inFlight, e.lastUsedAt, e.idleUnloadAt, e.idleTimer]).toEqual([1, 1_050, 61_050, timer]);
    refused.end(2_000);
    refused.served(2_100);
    expect([e.inFlight, e.lastUsedAt, e.idleUnloadAt, e.idleTimer]).toEqual([0, 1_050, 61_050, timer]);
    clearTimeout(timer);
  });

  it("restart and idle timers are cleared together at shutdown", () => {
    const e = new ServerEntry("id", "host", "alpha");
    e.restartTimer = setTimeout(() => undefined, 60_000);
    e.idleTimer = setTimeout(() => undefined, 60_000);
    expect(e.busy).toBe(true);
    e.clearTimers();
    expect([e.restartTimer, e.idleTimer, e.busy]).toEqual([null, null, false]);
  });
});

describe("sameProcess", () => {
  it("same start time and pid (or an unknown pid); a reused pid with another start time is another process", () => {
    expect(sameProcess({ pid: 1, startedAtMs: 5 }, { pid: 1, startedAtMs: 5 })).toBe(true);
    expect(sameProcess({ pid: null, startedAtMs: 5 }, { pid: 1, startedAtMs: 5 })).toBe(true);
    expect(sameProcess({ pid: 1, startedAtMs: 5 }, { pid: 1, startedAtMs: 6 })).toBe(false);
    expect(sameProcess({ pid: 1, startedAtMs: 5 }, { pid: 2, startedAtMs: 5 })).toBe(false);
    expect(sameProcess({ pid: 1, startedAtMs: null }, { pid: 1, startedAtMs: null })).toBe(false);
    expect(sameProcess(null, { pid: 1, startedAtMs: 5 })).toBe(false);
  });
});
