import { describe, expect, it } from "vitest";
import { lastKnownText, recordedForHost } from "./host-reach";

describe("a command recorded for a host that cannot be reached, as the row says it", () => {
  it("a stop (wanted stopped, still running by its last known state) or a Restart (restartPending); none otherwise", () => {
    expect(recordedForHost({ state: "ready", desired: "stopped" })).toBe("stop");
    expect(recordedForHost({ state: "ready", desired: "running", restartPending: true })).toBe("restart");
    // A stop given after the restart is the last command.
    expect(recordedForHost({ state: "ready", desired: "stopped", restartPending: true })).toBe("stop");
    expect(recordedForHost({ state: "ready", desired: "running", restartPending: false })).toBeNull();
    expect(recordedForHost({ state: "stopped", desired: "stopped" })).toBeNull();
  });

  it("under the badge: 'last known · host mac unreachable', and what waits for it", () => {
    expect(lastKnownText("mac")).toBe("last known · host mac unreachable");
    expect(lastKnownText("mac", "stop")).toBe("last known · host mac unreachable · stop recorded, made when it is back");
    expect(lastKnownText("mac", "restart")).toBe("last known · host mac unreachable · restart recorded, made when it is back");
  });
});
