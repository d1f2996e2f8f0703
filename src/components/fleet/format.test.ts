import { describe, expect, it } from "vitest";
import { formatDuration } from "./format";

describe("formatDuration", () => {
  it("uses two units at most", () => {
    expect(formatDuration(0)).toBe("0 s");
    expect(formatDuration(65_000)).toBe("1 m 05 s");
    expect(formatDuration(3_725_000)).toBe("1 h 02 m");
    expect(formatDuration(90_000_000)).toBe("1 d 01 h");
  });
});
