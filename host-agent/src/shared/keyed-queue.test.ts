import { describe, expect, it } from "vitest";
import { KeyedQueue } from "./keyed-queue.ts";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("KeyedQueue", () => {
  it("runs one task at a time per key, in call order, and keys concurrently", async () => {
    const q = new KeyedQueue();
    const order: string[] = [];
    const a1 = q.run("a", async () => { order.push("a1 start"); await tick(20); order.push("a1 end"); });
    const a2 = q.run("a", async () => { order.push("a2 start"); });
    const b1 = q.run("b", async () => { order.push("b1 start"); });
    await Promise.all([a1, a2, b1]);
    expect(order.indexOf("a2 start")).toBeGreaterThan(order.indexOf("a1 end"));
    expect(order.indexOf("b1 start")).toBeLessThan(order.indexOf("a1 end"));
  });

  it("a failed task rejects its own caller and does not stop the next; keys are dropped when done", async () => {
    const q = new KeyedQueue();
    const bad = q.run("k", async () => { throw new Error("boom"); });
    expect(q.busy("k")).toBe(true);
    const good = q.run("k", async () => 7);
    await expect(bad).rejects.toThrow("boom");
    await expect(good).resolves.toBe(7);
    await q.idle();
    await tick(0);
    expect(q.busy("k")).toBe(false);
  });
});
