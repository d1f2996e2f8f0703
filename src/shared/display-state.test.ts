import { describe, expect, it } from "vitest";
import { displayState, rowActions } from "./display-state";

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
