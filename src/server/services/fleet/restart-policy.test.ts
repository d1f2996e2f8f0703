import { describe, expect, it } from "vitest";
import { DEFAULT_RESTART_POLICY, backoffDelay, crashesInWindow, decideAfterCrash, formatRecentCrashes, parseRecentCrashes, type RestartPolicy } from "./restart-policy";

const MIN = 60_000;

describe("restart policy", () => {
  it("backs off exponentially from about a second, capped at 30 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n))).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(backoffDelay(1000)).toBe(30_000);
  });

  it("restarts after the first four crashes in a window and fails on the fifth", () => {
    let history: number[] = [];
    const t0 = 1_000_000_000;
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const d = decideAfterCrash(history, t0 + i * 1000);
      expect(d.action).toBe("restart");
      if (d.action === "restart") delays.push(d.delayMs);
      history = d.recentCrashes;
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000]);
    const fifth = decideAfterCrash(history, t0 + 5000);
    expect(fifth).toMatchObject({ action: "fail", crashesInWindow: 5 });
    if (fifth.action === "fail") expect(fifth.reason).toMatch(/5 times within 10 minutes/);
  });

  it("forgets crashes older than the window", () => {
    const now = 5_000_000_000;
    const old = [now - 11 * MIN, now - 10.5 * MIN, now - 10 * MIN - 1, now - 20 * MIN];
    const d = decideAfterCrash(old, now);
    expect(d).toMatchObject({ action: "restart", delayMs: 1000, crashesInWindow: 1, recentCrashes: [now] });
    // Four recent ones plus this: failed, even with old ones around.
    const recent = [now - 9 * MIN, now - 5 * MIN, now - MIN, now - 1000];
    expect(decideAfterCrash([...old, ...recent], now).action).toBe("fail");
  });

  it("a cleared history (the user started it again) begins at the base delay", () => {
    expect(decideAfterCrash([], 42)).toMatchObject({ action: "restart", delayMs: 1000 });
  });

  it("takes its numbers from the policy (tests use a fast base)", () => {
    const fast: RestartPolicy = { baseDelayMs: 20, maxDelayMs: 100, maxCrashes: 3, windowMs: 1000 };
    expect(decideAfterCrash([], 0, fast)).toMatchObject({ action: "restart", delayMs: 20 });
    expect(decideAfterCrash([0], 10, fast)).toMatchObject({ action: "restart", delayMs: 40 });
    expect(decideAfterCrash([0, 10], 20, fast).action).toBe("fail");
    expect(decideAfterCrash([0, 10], 1005, fast)).toMatchObject({ action: "restart", crashesInWindow: 2 });
    expect(crashesInWindow([0, 500, 999, 2000], 1000, fast)).toEqual([500, 999]);
  });

  it("ignores crash times in the future (a clock that went back) and junk", () => {
    expect(crashesInWindow([Number.NaN, 10_000], 5000, DEFAULT_RESTART_POLICY)).toEqual([]);
  });

  it("round-trips the history column and reads junk as empty", () => {
    const times = [Date.parse("2026-11-25T10:00:00.000Z"), Date.parse("2026-11-25T10:01:00.000Z")];
    expect(parseRecentCrashes(formatRecentCrashes(times))).toEqual(times);
    expect(parseRecentCrashes("not json")).toEqual([]);
    expect(parseRecentCrashes('{"a":1}')).toEqual([]);
    expect(parseRecentCrashes(null)).toEqual([]);
    expect(parseRecentCrashes('["nope", 5]')).toEqual([5]);
  });
});
