import { describe, expect, it } from "vitest";
import { z } from "zod";
import { extraFlagSchema } from "./protocol.ts";

describe("extraFlagSchema's refusals say what to send", () => {
  it("a bare flag string (a script's usual first try) is told the object's shape; a bad value and an unknown flag by name", () => {
    const r = z.array(extraFlagSchema).safeParse(["--embeddings", { flag: "--seed", value: "x" }, { flag: "--nope" }]);
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => [i.path.join("."), i.message])).toEqual([
      ["0", 'an extra flag is an object {"flag": "--name", "value": "…"} (value only for a flag that takes one), e.g. {"flag": "--embeddings"}; got "--embeddings"'],
      ["1.value", "--seed needs an integer"],
      ["2.flag", expect.stringMatching(/^flag "--nope" is not allowed; allowed: --metrics, /)],
    ]);
  });
});
