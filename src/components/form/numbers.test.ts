import { describe, expect, it } from "vitest";
import { parseOptionalInt, parseRequiredInt } from "./numbers";

describe("numeric inputs", () => {
  it("reads empty as the default and refuses non-numbers before sending", () => {
    expect(parseOptionalInt(" ")).toEqual({ ok: true, value: null });
    expect(parseOptionalInt("-1")).toEqual({ ok: true, value: -1 });
    expect(parseOptionalInt("1e3").ok).toBe(false);
    expect(parseRequiredInt("")).toMatchObject({ ok: false, message: "is required" });
    // Out of range is the server's call (its message shows inline).
    expect(parseRequiredInt("80")).toEqual({ ok: true, value: 80 });
  });
});
