import { describe, expect, it } from "vitest";
import { SERVER_STATES, isAlive } from "../shared/server-states.ts";
import { canTransition, TRANSITIONS } from "./transitions.ts";

describe("server transition table", () => {
  it("names every state, and only known states as targets; no state goes to itself", () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...SERVER_STATES].sort());
    for (const [from, tos] of Object.entries(TRANSITIONS)) {
      for (const to of tos) expect(SERVER_STATES).toContain(to);
      expect(tos).not.toContain(from);
    }
  });

  it("a run goes stopped → starting → ready → stopping → stopped", () => {
    const path = ["stopped", "starting", "ready", "stopping", "stopped"] as const;
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1]!, path[i]!)).toBe(true);
  });

  it("a crash, an exit while loading and a readiness deadline each have their one path", () => {
    expect(canTransition("ready", "exited")).toBe(true);
    expect(canTransition("unhealthy", "exited")).toBe(true);
    expect(canTransition("starting", "failed")).toBe(true);
    // The deadline first ends the processes (stopping), then reports the failure.
    expect(canTransition("starting", "stopping")).toBe(true);
    expect(canTransition("stopping", "failed")).toBe(true);
    // A loading server cannot be reported as crashed (exited is for servers that were ready).
    expect(canTransition("starting", "exited")).toBe(false);
  });

  it("nothing comes back to life from stopped except through a start or an adoption, and a stopped server was never skipped past stopping when alive", () => {
    expect(canTransition("stopped", "stopping")).toBe(false);
    expect(canTransition("stopped", "exited")).toBe(false);
    expect(canTransition("exited", "ready")).toBe(false);
    expect(canTransition("failed", "ready")).toBe(false);
    expect(canTransition("failed", "starting")).toBe(false);
    expect(canTransition("stopping", "ready")).toBe(false);
    expect(canTransition("stopping", "starting")).toBe(false);
    // A live server ends through stopping, a crash (exited) or a stop made by another agent (ready/unhealthy → stopped).
    expect(canTransition("starting", "stopped")).toBe(false);
  });

  it("an incomplete stop (failed) can be tried again; every not-alive state can be asked to stop", () => {
    expect(canTransition("failed", "stopping")).toBe(true);
    for (const s of SERVER_STATES) if (!isAlive(s) && s !== "stopped") expect(canTransition(s, "stopped")).toBe(true);
  });
});
