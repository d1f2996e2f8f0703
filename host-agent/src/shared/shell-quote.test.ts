import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { shellCommand, shellQuote } from "./shell-quote.ts";

describe("shellQuote", () => {
  it("leaves plain words alone and quotes the rest", () => {
    expect(shellQuote("--ctx-size")).toBe("--ctx-size");
    expect(shellQuote("/models/a-1.gguf")).toBe("/models/a-1.gguf");
    expect(shellQuote("")).toBe("''");
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });

  it("a real shell reads the line back as the same argv, expanding nothing", () => {
    const argv = ["/bin/llama server", "--model", "/m/a $(echo pwned) `id` $HOME *.gguf", "--alias", "it's \"q\"", "", "--port", "8081"];
    const line = shellCommand(argv);
    // `set --` makes the line's words the shell's arguments; printf hands them back NUL-separated.
    const words = execFileSync("bash", ["-c", `set -- ${line}; printf '%s\\0' "$@"`], { encoding: "utf8" }).split("\0").slice(0, -1);
    expect(words).toEqual(argv);
  });
});
