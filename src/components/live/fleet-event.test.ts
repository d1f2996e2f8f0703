import { isStopCause } from "synapse-host-agent/server-states";
import { describe, expect, it } from "vitest";
import { isRestartEvent, patchRowFromRestartEvent, patchRowFromStateEvent, toFleetEvent, type FleetEventView } from "./fleet-event";

const row = { modelId: "m1", state: "exited", pid: 100, cause: "crash", lastError: "killed by SIGKILL", startedAt: "2026-12-02T03:22:21.000Z" };
const event = (e: Partial<FleetEventView> & { state: string }): FleetEventView & { state: string } => ({ id: null, kind: "state", at: null, modelId: "m1", hostId: null, message: "", pid: undefined, reason: null, cause: undefined, line: null, seq: null, ...e });

describe("patchRowFromStateEvent: a status row as a live state event leaves it", () => {
  it("a new process (a restart's start): its state and pid, and its uptime from the event, not from the process before it", () => {
    const patched = patchRowFromStateEvent(row, event({ state: "starting", pid: 200, at: "2026-12-02T03:22:44.000Z" }), isStopCause);
    expect(patched).toMatchObject({ state: "starting", pid: 200, startedAt: "2026-12-02T03:22:44.000Z", lastError: "killed by SIGKILL" });
  });

  it("the same process: its start stays; a crash's reason becomes the last error, cleared once ready; unknown causes are dropped", () => {
    const ready = patchRowFromStateEvent({ ...row, state: "starting" }, event({ state: "ready", pid: 100, at: "2026-12-02T03:23:00.000Z" }), isStopCause);
    expect(ready).toMatchObject({ state: "ready", pid: 100, startedAt: row.startedAt, lastError: null });
    const crashed = patchRowFromStateEvent({ ...row, state: "ready" }, event({ state: "exited", pid: null, reason: "killed by SIGSEGV", cause: "crash" }), isStopCause);
    expect(crashed).toMatchObject({ state: "exited", pid: null, cause: "crash", lastError: "killed by SIGSEGV", startedAt: row.startedAt });
    expect(patchRowFromStateEvent(row, event({ state: "stopped", cause: "no-such-cause" }), isStopCause).cause).toBeNull();
  });

  it("a stop with its cause leaves the row not wanted running: after the app's shutdown it reads stopped, not queued", () => {
    // A trial's fleet page read "QUEUED · stopped at app shutdown" once the app had gone (no status read after it).
    const running = { ...row, state: "stopping", desired: "running", cause: null };
    expect(patchRowFromStateEvent(running, event({ state: "stopped", pid: null, cause: "shutdown" }), isStopCause)).toMatchObject({ state: "stopped", cause: "shutdown", desired: "stopped" });
    // A crash is no stop: still wanted running (its restart, or "crashed").
    expect(patchRowFromStateEvent({ ...running, state: "ready" }, event({ state: "exited", pid: null, cause: "crash", reason: "killed by SIGKILL" }), isStopCause).desired).toBe("running");
  });
});

describe("patchRowFromRestartEvent: the planned restart, from the event that plans it", () => {
  it("a crashed row gets its restart's due time from the action event's delay, so it never reads 'crashed, nothing planned' in between", () => {
    const planned = toFleetEvent({ id: "48", data: { kind: "action", at: "2026-12-02T04:00:00.000Z", modelId: "m1", hostId: "h1", state: null, message: "alpha: crashed: killed by SIGKILL; restarting in 2.0 s (restart 2 of at most 4 within 10 minutes)", data: { delayMs: 2000, crashes: 2 } } })!;
    expect(planned.restartInMs).toBe(2000);
    expect(patchRowFromRestartEvent({ ...row, nextRestartAt: null, restarts: 1 }, planned, 0)).toMatchObject({ nextRestartAt: "2026-12-02T04:00:02.000Z", restarts: 1 });
    // Not for a row that is no longer crashed, nor for other actions.
    expect(patchRowFromRestartEvent({ ...row, state: "starting", nextRestartAt: null, restarts: 1 }, planned, 0).nextRestartAt).toBeNull();
    const other = toFleetEvent({ kind: "action", at: "2026-12-02T04:00:00.000Z", modelId: "m1", message: "alpha: start requested", data: {} })!;
    expect(isRestartEvent(other)).toBe(false);
    expect(patchRowFromRestartEvent({ ...row, nextRestartAt: null, restarts: 1 }, other, 0)).toMatchObject({ nextRestartAt: null, restarts: 1 });
  });

  it("the restart's count, from the event that begins it, so the RESTARTS cell changes with the badge, not 0.2 s after READY", () => {
    const begins = toFleetEvent({ id: "49", data: { kind: "action", at: "2026-12-02T04:00:02.000Z", modelId: "m1", hostId: "h1", state: null, message: "alpha: restarting after a crash (2 restarts since it was last started by hand)", data: { restarts: 2 } } })!;
    expect(isRestartEvent(begins)).toBe(true);
    const crashed = { ...row, nextRestartAt: "2026-12-02T04:00:02.000Z", restarts: 1 };
    expect(patchRowFromRestartEvent(crashed, begins, 0)).toEqual({ ...crashed, restarts: 2 });
    // The status's count is the event's (a start by hand since reset it to 0: the next restart's event says 1).
    expect(patchRowFromRestartEvent({ ...crashed, restarts: 0 }, { ...begins, restarts: 1 }, 0).restarts).toBe(1);
  });
});
