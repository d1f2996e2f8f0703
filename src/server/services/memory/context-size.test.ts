import { describe, expect, it } from "vitest";
import { contextAboveTrainedNote, contextCapNote, contextSize, effectiveContext } from "./context-size";

const DEFAULT = { ctxSize: 32768 };

describe("contextSize: the context a model's server runs with", () => {
  it("caps the global default at the model's trained context when that is smaller", () => {
    const c = contextSize({ ctxSize: null, contextLength: 4096 }, DEFAULT);
    expect(c).toEqual({ ctxSize: 4096, tokens: 4096, cappedDefault: 32768 });
    expect(contextCapNote(c)).toBe("the model's own context (4096) is below the default 32768");
  });

  it("keeps the default when the trained context is as large or larger, or not known", () => {
    for (const contextLength of [32768, 131072, null, 0, -1, 4096.5]) {
      const c = contextSize({ ctxSize: null, contextLength }, DEFAULT);
      expect(c, `contextLength ${contextLength}`).toEqual({ ctxSize: 32768, tokens: 32768, cappedDefault: null });
      expect(contextCapNote(c)).toBeNull();
    }
  });

  it("uses an explicit per-model size as given, above or below the trained context (RoPE scaling)", () => {
    expect(contextSize({ ctxSize: 8192, contextLength: 4096 }, DEFAULT)).toEqual({ ctxSize: 8192, tokens: 8192, cappedDefault: null });
    expect(contextSize({ ctxSize: 2048, contextLength: 4096 }, DEFAULT)).toEqual({ ctxSize: 2048, tokens: 2048, cappedDefault: null });
    expect(contextSize({ ctxSize: 65536, contextLength: null }, DEFAULT)).toEqual({ ctxSize: 65536, tokens: 65536, cappedDefault: null });
  });

  it("keeps 0's meaning, per model or as the default: llama-server takes the trained context (tokens 0 when unknown)", () => {
    expect(contextSize({ ctxSize: 0, contextLength: 4096 }, DEFAULT)).toEqual({ ctxSize: 0, tokens: 4096, cappedDefault: null });
    expect(contextSize({ ctxSize: null, contextLength: 4096 }, { ctxSize: 0 })).toEqual({ ctxSize: 0, tokens: 4096, cappedDefault: null });
    expect(contextSize({ ctxSize: 0, contextLength: null }, DEFAULT)).toEqual({ ctxSize: 0, tokens: 0, cappedDefault: null });
  });

  it("effectiveContext is the tokens of the same rule", () => {
    expect(effectiveContext({ ctxSize: null, contextLength: 4096 }, DEFAULT)).toBe(4096);
    expect(effectiveContext({ ctxSize: 0, contextLength: 2048 }, DEFAULT)).toBe(2048);
    expect(effectiveContext({ ctxSize: null, contextLength: null }, DEFAULT)).toBe(32768);
  });

  it("says when a model's own size is above its trained context (llama-server serves at most the trained context a slot)", () => {
    expect(contextAboveTrainedNote({ ctxSize: 8192, contextLength: 4096 })).toBe("8192 is above the model's trained context (4096): llama-server serves at most 4096 tokens a slot, and still allocates the KV cache for 8192");
    for (const m of [{ ctxSize: 4096, contextLength: 4096 }, { ctxSize: 2048, contextLength: 4096 }, { ctxSize: null, contextLength: 4096 }, { ctxSize: 0, contextLength: 4096 }, { ctxSize: 8192, contextLength: null }])
      expect(contextAboveTrainedNote(m), JSON.stringify(m)).toBeNull();
  });
});
