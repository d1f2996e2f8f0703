import { describe, expect, it } from "vitest";
import { displayState, rowActions } from "./display-state";
import { formatDuration } from "./format";

describe("displayState", () => {
  it("shows a wanted but not yet started server as queued", () => {
    expect(displayState("stopped", "running").key).toBe("queued");
    expect(displayState("stopped", "stopped").key).toBe("stopped");
  });
  it("reads starting as loading and exited as a crash", () => {
    expect(displayState("starting", "running").label).toBe("Loading");
    expect(displayState("exited", "running")).toMatchObject({ label: "Crashed", tone: "bad" });
  });
  it("treats an unknown state as stopped", () => {
    expect(displayState("weird", null).key).toBe("stopped");
  });
});

describe("on-demand models", () => {
  it("a stopped on-demand model is idle, not stopped; it can be started by hand; loading and ready read as usual", () => {
    expect(displayState("stopped", "stopped", "on-demand")).toMatchObject({ key: "idle", label: "Idle" });
    expect(displayState("stopped", "stopped", "always").key).toBe("stopped");
    expect(displayState("starting", "running", "on-demand").label).toBe("Loading");
    expect(displayState("ready", "running", "on-demand").key).toBe("ready");
    expect(rowActions("stopped", "stopped").canStart).toBe(true);
  });
});

describe("rowActions", () => {
  it("offers start only when not running", () => {
    expect(rowActions("stopped", "stopped")).toEqual({ canStart: true, canStop: false, canRestart: false });
    expect(rowActions("ready", "running")).toEqual({ canStart: false, canStop: true, canRestart: true });
    expect(rowActions("stopped", "running")).toEqual({ canStart: false, canStop: true, canRestart: false });
    expect(rowActions("failed", "stopped").canStart).toBe(true);
  });
});

describe("formatDuration", () => {
  it("uses two units at most", () => {
    expect(formatDuration(0)).toBe("0 s");
    expect(formatDuration(65_000)).toBe("1 m 05 s");
    expect(formatDuration(3_725_000)).toBe("1 h 02 m");
    expect(formatDuration(90_000_000)).toBe("1 d 01 h");
  });
});
