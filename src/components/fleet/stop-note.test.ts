import { describe, expect, it } from "vitest";
import { restartPendingNote, stopNote } from "./stop-note";

describe("stopNote: what a stop did, from servers.stop's answer", () => {
  const base = { name: "bench", state: "stopped" };
  it("a cancelled restart first (the model had crashed and waited), then a failed model, then nothing ran", () => {
    expect(stopNote({ ...base, previousState: "exited", restartCancelled: { dueAt: "2026-12-01T10:00:04.000Z", dueInMs: 2449 } })).toBe("bench: stopped; its restart (due in 2.4 s) is cancelled");
    expect(stopNote({ ...base, notRunning: true, previousState: "failed" })).toBe("bench had failed, nothing was running: recorded as stopped (its last error stays as history)");
    expect(stopNote({ ...base, notRunning: true })).toBe("bench was not running: nothing was stopped");
  });
  it("nothing for a stop that ended a process (the row says it), nor for one that left it running", () => {
    expect(stopNote(base)).toBeNull();
    expect(stopNote({ ...base, state: "ready", restartCancelled: { dueAt: "2026-12-01T10:00:04.000Z", dueInMs: 1 } })).toBeNull();
  });
});

describe("restartPendingNote: a Restart recorded for a host that cannot be reached", () => {
  it("said as a pending stop is; null for any other restart", () => {
    expect(restartPendingNote({ name: "remote-tiny", restartPending: { host: "mac", reason: "host 'mac' is unreachable: connect ECONNREFUSED" } })).toBe(
      "restart recorded, not yet made: host mac cannot be reached now (host 'mac' is unreachable: connect ECONNREFUSED); remote-tiny is restarted when the host is reachable again",
    );
    expect(restartPendingNote({ name: "remote-tiny" })).toBeNull();
  });
});
