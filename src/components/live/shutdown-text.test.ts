/** The banner every page shows while the app shuts down: what it waits for, what comes next, and after. */
import { describe, expect, it } from "vitest";
import type { ShutdownView } from "~/server/services/fleet/fleet-types";
import { shutdownText } from "./shutdown-text";

const began = Date.parse("2026-12-02T08:00:00.000Z");
const view = (v: Partial<ShutdownView>): ShutdownView => ({ stopServers: true, began: new Date(began).toISOString(), drainUntil: new Date(began + 10_000).toISOString(), phase: "waiting", requestsInFlight: 2, ...v });

describe("shutdownText", () => {
  it("during the wait: the requests in flight, the seconds left, what comes next and how to end the wait", () => {
    expect(shutdownText(view({}), began + 3_200, true)).toBe(
      "The app is shutting down: new gateway requests are refused (503 app_shutting_down). It waits for the 2 requests in flight, 7 s more at most, then goes on to stop every server it manages; a second Ctrl-C (or SIGTERM) ends the wait.",
    );
    expect(shutdownText(view({ stopServers: false, requestsInFlight: 1 }), began + 12_000, true)).toBe(
      "The app is shutting down: new gateway requests are refused (503 app_shutting_down). It waits for the request in flight, 0 s more at most, then goes on to exit, leaving its servers running; a second Ctrl-C (or SIGTERM) ends the wait.",
    );
    // Nothing in flight: no wait to speak of; rendered on the server: no countdown.
    expect(shutdownText(view({ requestsInFlight: 0 }), began, true)).toBe("The app is shutting down: new gateway requests are refused (503 app_shutting_down).");
    expect(shutdownText(view({}), null, true)).toContain("It waits for the 2 requests in flight, then goes on");
  });

  it("after the wait, and once the page has lost the app", () => {
    expect(shutdownText(view({ phase: "stopping", requestsInFlight: 0 }), began, true)).toBe("The app is shutting down: stopping every server it manages.");
    expect(shutdownText(view({ phase: "exiting", stopServers: false }), began, true)).toBe("The app is shutting down, leaving its servers running: its next start takes them over.");
    expect(shutdownText(view({ phase: "stopping" }), began, false)).toBe("The app has shut down (it stopped every server it manages). This page shows what it last saw, and reconnects when the app is back.");
    expect(shutdownText(view({ stopServers: false }), began, false)).toContain("The app has shut down (it left its servers running: its next start takes them over).");
  });
});
