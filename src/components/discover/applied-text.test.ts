import { describe, expect, it } from "vitest";
import { appliedText } from "./applied-text";

describe("the Discover banner after enabling or removing", () => {
  it("says what was done, by name", () => {
    expect(appliedText("enable", ["foxtrot-q8"], [])).toBe("Enabled 1 model: foxtrot-q8.");
    expect(appliedText("enable", ["alpha", "bravo"], [])).toBe("Enabled 2 models: alpha, bravo.");
    expect(appliedText("remove", ["alpha"], [])).toBe("Removed 1 model from the registry: alpha.");
  });

  it("and what was refused, with why", () => {
    expect(appliedText("enable", ["alpha"], ["bravo: no model with id m2"])).toBe("Enabled 1 model: alpha. Not enabled (1): bravo: no model with id m2.");
    expect(appliedText("remove", [], ["alpha: it is running; stop it first", "bravo: gone"])).toBe("Nothing removed. Not removed (2): alpha: it is running; stop it first; bravo: gone.");
  });
});
