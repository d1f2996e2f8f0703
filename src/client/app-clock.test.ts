import { describe, expect, it } from "vitest";
import { appClockSkewMs, clockSamplingFetch } from "./app-clock";
import { table } from "./cli";

// Half a second into a second: a Date header names the second, and its middle is then exactly the app's clock.
const CLI_NOW = Date.parse("2026-12-01T04:00:00.500Z");
/** The Date header an app whose clock is `skewMs` ahead sends at CLI_NOW (whole seconds, truncated). */
const dateAt = (skewMs: number) => new Date(CLI_NOW + skewMs).toUTCString();

describe("appClockSkewMs: the app's clock minus the CLI's, from its answer's Date header", () => {
  it("a fixed skew (90 s ahead, 2 min behind) is measured to within the header's second", () => {
    const ahead = appClockSkewMs({ date: dateAt(90_000), sentMs: CLI_NOW - 20, receivedMs: CLI_NOW + 20 });
    expect(Math.abs(ahead - 90_000)).toBeLessThanOrEqual(520);
    const behind = appClockSkewMs({ date: dateAt(-120_000), sentMs: CLI_NOW - 20, receivedMs: CLI_NOW + 20 });
    expect(Math.abs(behind + 120_000)).toBeLessThanOrEqual(520);
  });
  it("clocks that agree as far as the header can tell: 0, not half a second of noise", () => {
    expect(appClockSkewMs({ date: dateAt(0), sentMs: CLI_NOW - 20, receivedMs: CLI_NOW + 20 })).toBe(0);
    expect(appClockSkewMs({ date: dateAt(400), sentMs: CLI_NOW - 20, receivedMs: CLI_NOW + 20 })).toBe(0);
  });
  it("no header, an unreadable one, or no answer: 0 (the CLI's clock, as before)", () => {
    expect(appClockSkewMs({ date: null, sentMs: CLI_NOW, receivedMs: CLI_NOW })).toBe(0);
    expect(appClockSkewMs({ date: "yesterday", sentMs: CLI_NOW, receivedMs: CLI_NOW })).toBe(0);
    expect(appClockSkewMs(null)).toBe(0);
  });
});

describe("the status table from an app 90 s ahead", () => {
  it("LAST USED and IDLE UNLOAD read as on the app when counted from the CLI's clock plus the measured skew", () => {
    const skew = appClockSkewMs({ date: dateAt(90_000), sentMs: CLI_NOW, receivedMs: CLI_NOW });
    const appNow = CLI_NOW + 90_000;
    const row = { name: "warm", host: "local", port: 8081, state: "ready", pid: 7, uptimeMs: 60_000, restarts: 0, desired: "running", loadPolicy: "on-demand", cause: null, inFlight: 0, lastUsedAt: new Date(appNow - 12_000).toISOString(), idleUnloadAt: new Date(appNow + 250_000).toISOString() };
    expect(table([row], true, CLI_NOW + skew).split("\n")[1]).toMatch(/\s12s ago\s+unloads in 4m 10s$/);
    // Counted from the CLI's own clock instead: the last use lies in its future, the unload 90 s too late.
    expect(table([row], true, CLI_NOW).split("\n")[1]).toMatch(/\s0s ago\s+unloads in 5m 40s$/);
  });
});

describe("clockSamplingFetch", () => {
  it("keeps the last answer's Date header and when it was sent and received", async () => {
    let t = CLI_NOW;
    const sampling = clockSamplingFetch(async () => new Response("{}", { headers: { date: dateAt(90_000) } }), () => (t += 10));
    expect(sampling.last()).toBeNull();
    await sampling.fetch("http://app.invalid/api/trpc/servers.status");
    expect(sampling.last()).toEqual({ date: dateAt(90_000), sentMs: CLI_NOW + 10, receivedMs: CLI_NOW + 20 });
  });
});
