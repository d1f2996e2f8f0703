import { describe, expect, it } from "vitest";
import { budgetAgeText, clockTime, freeMemoryText } from "./host-memory-text";

const GiB = 1024 ** 3;
const size = (b: number) => `${(b / GiB).toFixed(1)} GiB`;
const clock = (iso: string) => iso.slice(11, 19);
const reading = { availableBytes: 22 * GiB, at: "2026-12-02T12:00:46.000Z" };

describe("a host card's memory words", () => {
  it("a reachable host: free memory now", () => {
    expect(freeMemoryText(reading, false, size, clock)).toBe("22.0 GiB free now");
    expect(budgetAgeText("agent", reading, false, clock)).toBeNull();
  });

  it("a host that cannot be reached: the figures are from the last contact, with its time (a trial's card said 'free now' with sshd stopped)", () => {
    expect(freeMemoryText(reading, true, size, clock)).toBe("22.0 GiB free at last contact, 12:00:46");
    expect(freeMemoryText(reading, true, size, clock)).not.toContain("now");
    expect(budgetAgeText("agent", reading, true, clock)).toBe("as read at last contact, 12:00:46");
  });

  it("a budget set by the user is not a reading: nothing added; no free memory read: no words", () => {
    expect(budgetAgeText("user", reading, true, clock)).toBeNull();
    expect(budgetAgeText("agent", null, true, clock)).toBeNull();
    expect(freeMemoryText({ ...reading, availableBytes: null }, true, size, clock)).toBeNull();
  });

  it("clockTime: a local clock time, the text itself when it does not parse", () => {
    expect(clockTime("2026-12-02T12:00:46.000Z")).toMatch(/^\d\d:\d\d:\d\d$/);
    expect(clockTime("not a time")).toBe("not a time");
  });
});
