import { describe, expect, it } from "vitest";
import { formatBytes, formatRate } from "./format";

describe("chart numbers", () => {
  it("bytes in binary units", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(3.5 * 1024 ** 3)).toBe("3.5 GiB");
    expect(formatBytes(200 * 1024 ** 2)).toBe("200 MiB");
  });
  it("rates, short", () => {
    expect(formatRate(0)).toBe("0");
    expect(formatRate(0.44)).toBe("0.4");
    expect(formatRate(12.4)).toBe("12");
    expect(formatRate(1234)).toBe("1.2k");
  });
});
