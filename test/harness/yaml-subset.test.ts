import { describe, expect, it } from "vitest";
import { composeDurationMs, interpolate, parseDockerfile, envPairs, copyArgs } from "./docker-files";
import { parseYamlSubset } from "./yaml-subset";

describe("YAML subset reader", () => {
  it("reads mappings, sequences, compact mappings in sequences, flow sequences and quotes", () => {
    const doc = parseYamlSubset(
      [
        "# comment",
        "a:",
        "  b: plain value # trailing comment",
        '  c: "quoted # not a comment \\"x\\""',
        "  d: 'it''s'",
        "  e:",
        "    - one",
        '    - "two: 2"',
        "    - k: v",
        "      k2: v2",
        '  f: ["CMD", "node", "-e", "a,b"]',
        "  g:",
        "  h: http://x:1/y",
        "list:",
        "- at key indent",
      ].join("\n"),
    );
    expect(doc).toEqual({
      a: { b: "plain value", c: 'quoted # not a comment "x"', d: "it's", e: ["one", "two: 2", { k: "v", k2: "v2" }], f: ["CMD", "node", "-e", "a,b"], g: null, h: "http://x:1/y" },
      list: ["at key indent"],
    });
  });

  it("refuses what it does not read, naming the line", () => {
    expect(() => parseYamlSubset("a: &anchor x")).toThrow(/line 1: unsupported/);
    expect(() => parseYamlSubset("a:\n  b: |\n    text")).toThrow(/line 2: unsupported/);
    expect(() => parseYamlSubset("a: 1\na: 2")).toThrow(/line 2: duplicate key a/);
    expect(() => parseYamlSubset("a:\n  b: 1\n    c: 2")).toThrow(/line 3/);
  });
});

describe("compose interpolation and durations", () => {
  it("follows compose's rules", () => {
    const vars = { SET: "x", EMPTY: "" };
    expect(interpolate("${SET}-${UNSET}-$SET-$$HOME", vars)).toBe("x--x-$HOME");
    expect(interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-${SET}}", vars)).toBe("d  d x");
    expect(() => interpolate("${UNSET:?set it}", vars)).toThrow(/UNSET is required: set it/);
    expect(composeDurationMs("1m30s")).toBe(90_000);
    expect(() => composeDurationMs("75")).toThrow();
  });
});

describe("Dockerfile reader", () => {
  it("reads stages, continuations, ENV pairs and COPY flags", () => {
    const df = parseDockerfile(["ARG V=1", "FROM a:${V} AS one", "# c", "ENV A=1 \\", '    B="two words"', "FROM one", "COPY --from=one --chown=u:g /x ./y"].join("\n"));
    expect(df.globalArgs).toEqual({ V: "1" });
    expect(df.stages.map((s) => [s.name, s.from])).toEqual([["one", "a:${V}"], [null, "one"]]);
    expect(envPairs(df.stages[0]!.instructions[0]!.args)).toEqual({ A: "1", B: "two words" });
    expect(copyArgs(df.stages[1]!.instructions[0]!.args)).toEqual({ from: "one", chown: "u:g", sources: ["/x"], dest: "./y" });
  });
});
