import { describe, expect, it } from "vitest";
import { linesAfterTail } from "./log-merge";

const line = (text: string, seq: number | null) => ({ text, seq });

describe("linesAfterTail", () => {
  it("keeps the live lines the tail does not have, in order", () => {
    // The tail went up to line 12; 11 and 12 also streamed in while it was fetched.
    const live = [line("b", 11), line("c", 12), line("d", 13), line("e", 14)];
    expect(linesAfterTail(live, 12).map((l) => l.text)).toEqual(["d", "e"]);
  });

  it("keeps a repeated line when it came after the tail (numbers, not text, decide)", () => {
    const live = [line("GET /health 200", 5), line("GET /health 200", 6)];
    expect(linesAfterTail(live, 5).map((l) => l.seq)).toEqual([6]);
  });

  it("keeps nothing when every live line is in the tail", () => {
    expect(linesAfterTail([line("a", 3), line("b", 4)], 4)).toEqual([]);
  });

  it("an agent that does not number its lines: the tail alone, as before", () => {
    expect(linesAfterTail([line("a", 3)], null)).toEqual([]);
    expect(linesAfterTail([line("a", null)], 2)).toEqual([]);
  });
});
