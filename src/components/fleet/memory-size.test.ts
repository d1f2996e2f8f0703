import { describe, expect, it } from "vitest";
import { oneSize, sizeText } from "./memory-size";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe("sizeText", () => {
  it("on a host of 4 GiB or more: small sizes in MiB (never \"0.0 GiB\"), from 1 GiB up in GiB", () => {
    const budget = 16 * GiB;
    expect(
      [0, 0.3 * MiB, 9.94 * MiB, 9.96 * MiB, 12 * MiB, 49 * MiB, 51 * MiB, 512 * MiB, 1023.4 * MiB, 1023.6 * MiB, GiB, 7.5 * GiB, 16 * GiB].map((b) => sizeText(b, budget)),
    ).toEqual(["0.0 MiB", "0.3 MiB", "9.9 MiB", "10 MiB", "12 MiB", "49 MiB", "51 MiB", "512 MiB", "1023 MiB", "1.0 GiB", "1.0 GiB", "7.5 GiB", "16.0 GiB"]);
  });

  it("the scale's boundary is 4 GiB: just under it every size is MiB with one decimal", () => {
    expect(sizeText(12 * MiB, 4 * GiB)).toBe("12 MiB");
    expect(sizeText(2 * GiB, 4 * GiB)).toBe("2.0 GiB");
    expect(sizeText(12 * MiB, 4 * GiB - 1)).toBe("12.0 MiB");
    expect(sizeText(2 * GiB, 4 * GiB - 1)).toBe("2048.0 MiB");
    expect(sizeText(21.3 * MiB, 30 * MiB)).toBe("21.3 MiB");
  });
});

describe("oneSize", () => {
  it("GiB with two decimals from 1 GiB up, MiB below", () => {
    expect([30 * MiB, GiB, 2.5 * GiB].map(oneSize)).toEqual(["30.0 MiB", "1.00 GiB", "2.50 GiB"]);
  });
});
