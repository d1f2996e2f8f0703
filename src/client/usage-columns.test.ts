/** The gateway-usage cells of `synapse status`: spans, last use and what the idle unloader will do. */
import { describe, expect, it } from "vitest";
import { formatSpan, idleUnloadText, lastUsedText } from "./usage-columns";

const now = Date.parse("2026-12-01T02:00:00.000Z");
const at = (msFromNow: number) => new Date(now + msFromNow).toISOString();

describe("usage columns", () => {
  it("spans: two units at most, the second padded, a negative span (clock skew) as 0s", () => {
    expect([0, 999, 42_000, 250_400, 3_600_000 + 180_000, 3 * 86_400_000 + 4 * 3_600_000, -5_000].map(formatSpan)).toEqual(["0s", "0s", "42s", "4m 10s", "1h 03m", "3d 04h", "0s"]);
  });

  it("last use relative to now; none since the app started reads '-'", () => {
    expect(lastUsedText({ state: "ready", lastUsedAt: at(-65_000) }, now)).toBe("1m 05s ago");
    expect(lastUsedText({ state: "ready", lastUsedAt: null }, now)).toBe("-");
  });

  it("idle unload: a countdown only for a loaded on-demand model with nothing in flight", () => {
    const demand = { loadPolicy: "on-demand", desired: "running", inFlight: 0 };
    expect(idleUnloadText({ ...demand, state: "ready", idleUnloadAt: at(90_000) }, now)).toBe("unloads in 1m 30s");
    expect(idleUnloadText({ ...demand, state: "unhealthy", idleUnloadAt: at(5_000) }, now)).toBe("unloads in 5s");
    expect(idleUnloadText({ ...demand, state: "ready", idleUnloadAt: at(-1_000) }, now)).toBe("unloading now");
    expect(idleUnloadText({ ...demand, state: "ready", inFlight: 3, idleUnloadAt: null }, now)).toBe("in use");
    // Loading (a request started it) and stopping: the STATE column says it; no countdown runs.
    expect(idleUnloadText({ ...demand, state: "starting", inFlight: 1 }, now)).toBe("-");
    expect(idleUnloadText({ ...demand, state: "stopping", idleUnloadAt: at(-1_000) }, now)).toBe("-");
    expect(idleUnloadText({ loadPolicy: "on-demand", desired: "stopped", state: "stopped" }, now)).toBe("idle (loads on first request)");
    expect(idleUnloadText({ loadPolicy: "on-demand", desired: "stopped", state: "stopped", enabled: false }, now)).toBe("-");
    expect(idleUnloadText({ loadPolicy: "always", desired: "running", state: "ready", inFlight: 0, idleUnloadAt: at(90_000) }, now)).toBe("-");
  });
});
