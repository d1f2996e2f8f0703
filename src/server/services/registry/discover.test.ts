import { describe, expect, it } from "vitest";
import { nameCandidates, uniqueName } from "./discover";

describe("nameCandidates", () => {
  it.each([
    // Hugging Face layout: the stem already says the repository → the stem; the org only to disambiguate.
    ["/hub/models--Qwen--Qwen3-8B-GGUF/snapshots/abc/Qwen3-8B-Q4_K_M.gguf", ["Qwen3-8B-Q4_K_M", "Qwen-Qwen3-8B-Q4_K_M"]],
    ["/hub/models--unsloth--gpt-oss-20b-GGUF/snapshots/r1/gpt-oss-20b-F16.gguf", ["gpt-oss-20b-F16", "unsloth-gpt-oss-20b-F16"]],
    // A stem that does not name the repository gets the repository in front.
    ["/hub/models--TheBloke--Mistral-7B-Instruct-v0.2-GGUF/snapshots/9f/model-q4.gguf", ["Mistral-7B-Instruct-v0.2-model-q4", "TheBloke-Mistral-7B-Instruct-v0.2-model-q4"]],
    // Files in a quantization subfolder of the snapshot, and the first part of a split model.
    ["/hub/models--unsloth--DeepSeek-R1-GGUF/snapshots/aa/Q2_K/DeepSeek-R1-Q2_K-00001-of-00005.gguf", ["DeepSeek-R1-Q2_K", "unsloth-DeepSeek-R1-Q2_K"]],
    // Flat folders: the stem, then folder and stem.
    ["/models/llama/Llama-3.2-3B-Instruct-Q8_0.gguf", ["Llama-3.2-3B-Instruct-Q8_0", "llama-Llama-3.2-3B-Instruct-Q8_0"]],
    ["/m/My Model (copy).GGUF", ["My-Model-copy", "m-My-Model-copy"]],
    ["/m/__.gguf", ["model", "m"]],
  ])("%s", (p, expected) => {
    expect(nameCandidates(p)).toEqual(expected);
  });

  it("every candidate is a valid server id of at most 64 characters", () => {
    const long = `/hub/models--org--${"x".repeat(80)}/snapshots/r/${"y".repeat(90)}.gguf`;
    for (const n of nameCandidates(long)) {
      expect(n.length).toBeLessThanOrEqual(64);
      expect(n).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
    }
  });
});

describe("uniqueName", () => {
  it("takes the first free candidate, then numbers the first", () => {
    expect(uniqueName(["a", "org-a"], new Set())).toBe("a");
    expect(uniqueName(["a", "org-a"], new Set(["a"]))).toBe("org-a");
    expect(uniqueName(["a", "org-a"], new Set(["a", "org-a", "a-2"]))).toBe("a-3");
    expect(uniqueName(["z".repeat(64)], new Set(["z".repeat(64)]))).toBe(`${"z".repeat(62)}-2`);
  });
});
