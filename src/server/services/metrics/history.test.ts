import { describe, expect, it } from "vitest";
import { minuteOf, ModelHistory, type MetricPoint } from "./history";

const point = (t: number, gen: number | null = 1): MetricPoint => ({ t, generatedTokensPerS: gen, promptTokensPerS: 0, inFlight: 0, queued: 0, latencyMs: null, memoryBytes: null });

describe("a model's last hour", () => {
  it("keeps the newest points up to its capacity, oldest first", () => {
    const h = new ModelHistory(3);
    for (let t = 1; t <= 5; t++) h.push(point(t));
    expect(h.points().map((p) => p.t)).toEqual([3, 4, 5]);
    expect(h.points(4).map((p) => p.t)).toEqual([4, 5]);
    expect(h.last()?.t).toBe(5);
  });
  it("makes a minute of means (peaks for requests), skipping unknown values", () => {
    const m = minuteOf(60_000, [
      { ...point(60_000, 10), inFlight: 2, latencyMs: 100, memoryBytes: 5 },
      { ...point(65_000, null), queued: 3 },
      { ...point(70_000, 20), latencyMs: 300, memoryBytes: 7 },
    ]);
    expect(m).toEqual({ t: 60_000, generatedTokensPerS: 15, promptTokensPerS: 0, inFlight: 2, queued: 3, latencyMs: 200, memoryBytes: 7 });
    expect(minuteOf(0, [])).toBeNull();
  });
});
