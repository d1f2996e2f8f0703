import { describe, expect, it, vi } from "vitest";
import { createChangeWaiters } from "./change-waiters";

describe("change waiters", () => {
  it("a wait settles at the next wakeAll, or at its deadline, and then leaves the list", async () => {
    vi.useFakeTimers();
    try {
      const w = createChangeWaiters();
      const settled: string[] = [];
      void w.wait(1000).then(() => settled.push("a"));
      void w.wait(50).then(() => settled.push("b"));
      expect(w.size).toBe(2);
      await vi.advanceTimersByTimeAsync(60);
      expect([settled, w.size]).toEqual([["b"], 1]);
      w.wakeAll();
      await vi.advanceTimersByTimeAsync(0);
      expect([settled, w.size]).toEqual([["b", "a"], 0]);
      // Woken, its timer is gone: nothing fires later.
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
