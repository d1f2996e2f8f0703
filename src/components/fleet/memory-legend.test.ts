import { describe, expect, it } from "vitest";
import { memoryLegend, SEGMENT_COLORS, type LegendSegment } from "./memory-legend";

const seg = (name: string, bytes: number | null, kind: LegendSegment["kind"] = "running"): LegendSegment => ({ modelId: `id-${name}`, name, kind, bytes });

describe("memoryLegend", () => {
  it("gives each sized segment its own colour, in the bar's order", () => {
    const names = ["Meta-Llama-3.1-8B-Instruct-Q4_K_M", "qwen", "gemma-2-2b-it-Q8_0", "mistral-7b-v0.3", "phi-3-mini-4k-instruct", "tiny"];
    const legend = memoryLegend(names.map((n, i) => seg(n, (i + 1) * 1024 ** 3, i < 2 ? "running" : "start-all")));
    expect(legend.map((e) => e.segment.name)).toEqual(names);
    expect(new Set(legend.map((e) => e.color)).size).toBe(names.length);
    expect(legend.map((e) => e.segment.kind)).toEqual(["running", "running", "start-all", "start-all", "start-all", "start-all"]);
  });

  it("leaves out a segment with no estimate (it is not drawn), without skipping a colour", () => {
    const legend = memoryLegend([seg("a", 10), seg("unsized", null), seg("b", 20)]);
    expect(legend.map((e) => [e.segment.name, e.color])).toEqual([
      ["a", SEGMENT_COLORS[0]],
      ["b", SEGMENT_COLORS[1]],
    ]);
  });

  it("cycles through the colours past the last", () => {
    const legend = memoryLegend(Array.from({ length: SEGMENT_COLORS.length + 2 }, (_, i) => seg(`m${i}`, 1)));
    expect(legend.at(-2)!.color).toBe(SEGMENT_COLORS[0]);
    expect(legend.at(-1)!.color).toBe(SEGMENT_COLORS[1]);
  });

  it("is empty for a host with nothing to draw", () => {
    expect(memoryLegend([])).toEqual([]);
    expect(memoryLegend([seg("unsized", null)])).toEqual([]);
  });
});
