import { describe, expect, it } from "vitest";
import { singleFlight } from "./single-flight.ts";

describe("singleFlight", () => {
  it("concurrent calls with one key share one call; other keys and later calls run their own", async () => {
    const calls: string[] = [];
    const look = singleFlight((p: string) => p, async (p: string) => {
      calls.push(p);
      await new Promise((r) => setTimeout(r, 5));
      return `${p}:${calls.length}`;
    });
    const [a, b, c] = await Promise.all([look("/m"), look("/m"), look("/other")]);
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    expect(calls).toEqual(["/m", "/other"]);
    // Settled: nothing kept, the next call looks again.
    await look("/m");
    expect(calls).toEqual(["/m", "/other", "/m"]);
  });

  it("a failure reaches every caller that shared it, and is not kept", async () => {
    let n = 0;
    const look = singleFlight(() => "k", async () => {
      n += 1;
      await new Promise((r) => setTimeout(r, 1));
      if (n === 1) throw new Error("ENOENT");
      return "found";
    });
    const results = await Promise.allSettled([look(), look()]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(await look()).toBe("found");
  });
});
