import { describe, expect, it } from "vitest";
import { linesAfterTail, searchAnswerUsable } from "./log-merge";

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

describe("searchAnswerUsable", () => {
  const answer = (text: string, answeredAt: number) => ({ text, answeredAt });

  it("the host's answer to the text in the box, case ignored, after the tail: shown", () => {
    expect(searchAnswerUsable(answer("Failed", 2000), " failed ", 1000)).toBe(true);
  });

  it("an answer to a text typed before the one in the box: not shown for it", () => {
    expect(searchAnswerUsable(answer("fail", 2000), "failed", 1000)).toBe(false);
  });

  it("an answer older than the tail that replaced the lines (a reconnect, a start): not shown until asked again", () => {
    // Its cut was before lines that came in live and are now among the tail's unnumbered lines.
    expect(searchAnswerUsable(answer("failed", 1000), "failed", 2000)).toBe(false);
  });
});
