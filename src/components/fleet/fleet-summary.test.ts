/** The fleet page's summary line says what START ALL ENABLED really did, as a person reading it would check. */
import { describe, expect, it } from "vitest";
import { fleetSummary, startAllIds, stopAllDisabledReason, type SummaryRow } from "./fleet-summary";

const row = (modelId: string, state: string, desired: string, loadPolicy = "always", enabled = true, nextRestartAt: string | null = null): SummaryRow => ({ modelId, state, desired, loadPolicy, enabled, nextRestartAt });
/** Crashed, its restart planned by the app (the row reads "restart in 2 s"). */
const restarting = (modelId: string): SummaryRow => row(modelId, "exited", "running", "always", true, "2026-12-02T04:00:02.000Z");

describe("fleetSummary after START ALL ENABLED", () => {
  it("all ready: says so", () => {
    const rows = [row("a", "ready", "running"), row("b", "ready", "running")];
    expect(fleetSummary(rows, { kind: "start", ids: startAllIds(rows) })).toBe("Start all: all 2 ready");
  });

  it("a model refused for memory (left stopped) is not counted as ready", () => {
    // What the app leaves after a start-all on a host whose budget fits one of the two: a ready, b stopped (refused).
    const before = [row("a", "stopped", "stopped"), row("b", "stopped", "stopped")];
    const after = [row("a", "ready", "running"), row("b", "stopped", "stopped")];
    expect(fleetSummary(after, { kind: "start", ids: startAllIds(before) })).toBe("Start all: 1 of 2 ready, 1 not started");
  });

  it("failed and not started are both named; still loading is progress", () => {
    const after = [row("a", "ready", "running"), row("b", "failed", "running"), row("c", "stopped", "stopped")];
    expect(fleetSummary(after, { kind: "start", ids: ["a", "b", "c"] })).toBe("Start all: 1 of 3 ready, 1 failed, 1 not started");
    expect(fleetSummary([row("a", "ready", "running"), row("b", "unhealthy", "running")], { kind: "start", ids: ["a", "b"] })).toBe("Start all: 1 of 2 ready, 1 not ready");
    const loading = [row("a", "ready", "running"), row("b", "starting", "running"), row("c", "stopped", "running")];
    expect(fleetSummary(loading, { kind: "start", ids: ["a", "b", "c"] })).toBe("Starting 3 enabled: 1 ready · 1 loading · 1 queued");
  });

  it("on-demand models are not START ALL ENABLED's: an idle one is neither counted nor called ready", () => {
    const rows = [row("a", "stopped", "stopped"), row("od", "stopped", "stopped", "on-demand"), row("off", "stopped", "stopped", "always", false)];
    expect(startAllIds(rows)).toEqual(["a"]);
    const after = [row("a", "ready", "running"), row("od", "stopped", "stopped", "on-demand"), row("off", "stopped", "stopped", "always", false)];
    expect(fleetSummary(after, { kind: "start", ids: startAllIds(rows) })).toBe("Start all: all 1 ready");
  });

  it("a model restarting after a crash is progress, not a failure; failed once nothing restarts it", () => {
    const ids = ["a", "b"];
    expect(fleetSummary([row("a", "ready", "running"), restarting("b")], { kind: "start", ids })).toBe("Starting 2 enabled: 1 ready · 0 loading · 0 queued · 1 restarting");
    expect(fleetSummary([row("a", "ready", "running"), row("b", "exited", "running")], { kind: "start", ids })).toBe("Start all: 1 of 2 ready, 1 failed");
    expect(fleetSummary([row("a", "stopping", "stopped"), restarting("b")], { kind: "stop", ids })).toBe("Stopping 2: 1 stopped · 1 stopping");
  });
});

describe("fleetSummary otherwise", () => {
  it("stop-all progress, and the fleet's totals", () => {
    expect(fleetSummary([row("a", "stopping", "stopped"), row("b", "stopped", "stopped")], { kind: "stop", ids: ["a", "b"] })).toBe("Stopping 2: 1 stopped · 1 stopping");
    expect(fleetSummary([row("a", "ready", "running"), row("b", "failed", "running", "always", false)], null)).toBe("2 models · 1 enabled · 1 ready · 1 need attention");
    expect(fleetSummary(undefined, null)).toBe("Loading…");
  });

  it("a crashed model waiting for the restart the app planned is restarting, not in need of attention; crashed with none planned, failed or unhealthy is", () => {
    // Nothing is asked of the user while the row reads "restart in 2 s": a fresh user read "1 need attention" there.
    expect(fleetSummary([row("a", "ready", "running"), restarting("b")], null)).toBe("2 models · 2 enabled · 1 ready · 1 restarting");
    const all = [row("a", "ready", "running"), restarting("b"), row("c", "exited", "running"), row("d", "failed", "running"), row("e", "unhealthy", "running")];
    expect(fleetSummary(all, null)).toBe("5 models · 5 enabled · 1 ready · 1 restarting · 3 need attention");
  });
});

describe("STOP ALL greyed out", () => {
  it("says why when nothing is running, and nothing when a server runs or is wanted running", () => {
    expect(stopAllDisabledReason([row("a", "stopped", "stopped"), row("b", "stopped", "stopped")])).toBe("Nothing is running: no server to stop");
    expect(stopAllDisabledReason([])).toBe("Nothing is running: no server to stop");
    expect(stopAllDisabledReason([row("a", "stopped", "stopped"), row("b", "ready", "running")])).toBeNull();
    expect(stopAllDisabledReason([row("a", "stopped", "running")])).toBeNull();
    expect(stopAllDisabledReason(undefined)).toBe("Loading the fleet…");
  });
});

describe("fleetSummary with a host unreachable", () => {
  const down = { kind: "ssh", state: "disconnected", error: "host 'mac' is unreachable (next attempt in 1000 ms): connect ECONNREFUSED", unreachableSince: "2026-12-02T04:00:00.000Z" };
  const onDown = (r: SummaryRow): SummaryRow => ({ ...r, link: down });

  it("a model last known ready there is not counted ready (was: '1 ready', the row a green READY)", () => {
    const rows = [row("a", "ready", "running"), onDown(row("b", "ready", "running")), onDown(row("c", "stopped", "stopped"))];
    expect(fleetSummary(rows, null)).toBe("3 models · 3 enabled · 1 ready · 1 on an unreachable host");
    expect(fleetSummary([onDown(row("b", "ready", "running")), onDown(row("d", "starting", "running"))], null)).toBe("2 models · 2 enabled · 0 ready · 2 on unreachable hosts");
  });

  it("start all: not 'all ready' while one's host is unreachable; stop all: its stop waits for the host", () => {
    const rows = [row("a", "ready", "running"), onDown(row("b", "ready", "running"))];
    expect(fleetSummary(rows, { kind: "start", ids: ["a", "b"] })).toBe("Start all: 1 of 2 ready, 1 on an unreachable host");
    const stopping = [row("a", "stopped", "stopped"), onDown(row("b", "ready", "stopped"))];
    expect(fleetSummary(stopping, { kind: "stop", ids: ["a", "b"] })).toBe("Stopping 2: 1 stopped · 0 stopping · 1 on an unreachable host, stopped when it is back");
    expect(fleetSummary([onDown(row("a", "ready", "stopped")), onDown(row("b", "ready", "stopped"))], { kind: "stop", ids: ["a", "b"] })).toBe("Stopping 2: 0 stopped · 0 stopping · 2 on unreachable hosts, stopped when they are back");
  });

  it("a link connecting for the first time since the app started, or connected, changes nothing", () => {
    const first = { kind: "ssh", state: "connecting", error: null, unreachableSince: null };
    expect(fleetSummary([{ ...row("a", "ready", "running"), link: first }], null)).toBe("1 model · 1 enabled · 1 ready");
    expect(fleetSummary([{ ...row("a", "ready", "running"), link: { ...down, state: "connecting" } }], null)).toBe("1 model · 1 enabled · 0 ready · 1 on an unreachable host");
  });
});
