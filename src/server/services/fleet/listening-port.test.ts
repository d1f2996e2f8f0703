import { describe, expect, it } from "vitest";
import { listeningPort, pendingPort } from "./listening-port";

describe("listeningPort / pendingPort", () => {
  it("a live process keeps the port it was started on; the registry's is pending until its next start", () => {
    for (const observed of ["starting", "ready", "unhealthy", "stopping"]) {
      const m = { port: 3416, server: { observed, port: 3414 } };
      expect([listeningPort(m), pendingPort(m)]).toEqual([3414, 3416]);
    }
  });
  it("no live process (stopped, exited, failed, never started): the registry's port, nothing pending", () => {
    for (const server of [{ observed: "stopped", port: 3414 }, { observed: "exited", port: 3414 }, { observed: "failed", port: 3414 }, null]) {
      const m = { port: 3416, server };
      expect([listeningPort(m), pendingPort(m)]).toEqual([3416, null]);
    }
  });
  it("a live process on the registry's port, or one whose port is not recorded: nothing pending", () => {
    expect(pendingPort({ port: 3414, server: { observed: "ready", port: 3414 } })).toBeNull();
    expect(listeningPort({ port: 3414, server: { observed: "ready", port: null } })).toBe(3414);
  });
});
