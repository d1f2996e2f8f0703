import { describe, expect, it } from "vitest";
import type { SpecSettings } from "~/server/services/registry/spec";
import { changedSinceFailure, settingsHash } from "./settings-hash";

const settings: SpecSettings = { ctxSize: 32768, gpuLayers: 99, threads: 8, batchSize: 512, ubatchSize: 256, flashAttn: "on", loadMode: "mmap", parallel: 1, readinessDeadlineMs: 120_000, stopGraceMs: 10_000 };
const host = { name: "mac", registryModelsRoot: "/models", hostModelsRoot: "/Users/me/models" };
const model = {
  name: "qwen-7b", filePath: "/models/qwen/q4.gguf", port: 8081, ctxSize: null, contextLength: null, gpuLayers: null, threads: null, batchSize: null, ubatchSize: null,
  flashAttn: null, loadMode: null, parallel: null, alias: null, readinessDeadlineMs: null, serverApiKey: "k", serverApiKeyOff: false,
  extraFlags: JSON.stringify([{ flag: "--cache-type-v", value: "q4_0" }]),
};
const failedWith = (hash: string | null, over: Partial<typeof model> = {}) => ({ ...model, ...over, host, server: { observed: "failed", failedSpecHash: hash } });

describe("settingsHash / changedSinceFailure", () => {
  it("the same settings make the same hash; a change of what llama-server is given makes another", () => {
    const h = settingsHash(model, host, settings);
    expect(h).toMatch(/^[0-9a-f]{16}$/);
    expect(settingsHash({ ...model }, host, { ...settings })).toBe(h);
    expect(settingsHash({ ...model, extraFlags: "[]" }, host, settings)).not.toBe(h);
    // A global default the model takes is part of its settings.
    expect(settingsHash(model, host, { ...settings, threads: 4 })).not.toBe(h);
  });

  it("settings that make no valid spec hash their error: stable, and other than any spec's", () => {
    const bad = { ...model, extraFlags: "not json" };
    expect(settingsHash(bad, host, settings)).toMatch(/^invalid:[0-9a-f]{16}$/);
    expect(settingsHash(bad, host, settings)).toBe(settingsHash({ ...bad }, host, settings));
  });

  it("changed since the failure only for a failed row whose recorded hash differs from its settings' now", () => {
    const h = settingsHash(model, host, settings);
    expect(changedSinceFailure(failedWith(h), settings)).toBe(false);
    expect(changedSinceFailure(failedWith(h, { extraFlags: "[]" }), settings)).toBe(true);
    // Failed before the hash was recorded: a person starts it.
    expect(changedSinceFailure(failedWith(null, { extraFlags: "[]" }), settings)).toBe(false);
    // Not failed: nothing to retry.
    expect(changedSinceFailure({ ...failedWith(h, { extraFlags: "[]" }), server: { observed: "stopped", failedSpecHash: h } }, settings)).toBe(false);
  });
});
