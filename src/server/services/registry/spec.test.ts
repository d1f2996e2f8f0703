import { serverSpecSchema } from "synapse-host-agent/protocol";
import { describe, expect, it } from "vitest";
import { ServiceError } from "../errors";
import { resolveSpec, specForAgent, type SpecModel, type SpecSettings } from "./spec";

const settings: SpecSettings = { ctxSize: 32768, gpuLayers: 99, threads: 8, batchSize: 512, ubatchSize: 256, flashAttn: "on", loadMode: "mmap", parallel: 1, readinessDeadlineMs: 120_000, stopGraceMs: 10_000 };
const host = { name: "mac", registryModelsRoot: "/models", hostModelsRoot: "/Users/me/models" };
const model: SpecModel = {
  name: "qwen-7b", filePath: "/models/qwen/q4.gguf", port: 8081, ctxSize: null, contextLength: null, gpuLayers: null, threads: null, batchSize: null, ubatchSize: null,
  flashAttn: null, loadMode: null, parallel: null, alias: null, readinessDeadlineMs: null, extraFlags: "[]",
};

function errorOf(fn: () => unknown): ServiceError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ServiceError);
    return e as ServiceError;
  }
  throw new Error("expected a ServiceError");
}

describe("resolveSpec", () => {
  it("fills nulls from the global defaults and maps the path", () => {
    const spec = resolveSpec(model, host, settings);
    expect(spec).toEqual({
      id: "qwen-7b", modelPath: "/Users/me/models/qwen/q4.gguf", port: 8081, bindAddress: "127.0.0.1", ctxSize: 32768, gpuLayers: 99, threads: 8, batchSize: 512, ubatchSize: 256,
      flashAttn: "on", loadMode: "mmap", parallel: 1, alias: "qwen-7b", readinessDeadlineMs: 120_000, stopGraceMs: 10_000, extraFlags: [],
    });
    expect(serverSpecSchema.parse(spec)).toEqual(spec);
  });
  it("prefers per-model values, including zeros, and carries alias, api key and extra flags", () => {
    const spec = resolveSpec(
      { ...model, ctxSize: 0, gpuLayers: 0, threads: 2, batchSize: 64, ubatchSize: 32, flashAttn: "off", loadMode: "mlock", parallel: 4, alias: "qwen", readinessDeadlineMs: 5000, extraFlags: '[{"flag":"--metrics"},{"flag":"--temp","value":"0.7"}]' },
      host, settings, { apiKey: "k-123" },
    );
    expect(spec).toMatchObject({ ctxSize: 0, gpuLayers: 0, threads: 2, batchSize: 64, ubatchSize: 32, flashAttn: "off", loadMode: "mlock", parallel: 4, alias: "qwen", apiKey: "k-123", readinessDeadlineMs: 5000 });
    expect(spec.extraFlags).toEqual([{ flag: "--metrics" }, { flag: "--temp", value: "0.7" }]);
  });
  it("runs a model on the default context with no more than its trained context; an explicit size or 0 as given", () => {
    // The tiny model's GGUF says 4096; the default is 32768: llama.cpp would allocate 32768 cells.
    expect(resolveSpec({ ...model, contextLength: 4096 }, host, settings).ctxSize).toBe(4096);
    expect(resolveSpec({ ...model, contextLength: 131072 }, host, settings).ctxSize).toBe(32768);
    expect(resolveSpec({ ...model, contextLength: 4096, ctxSize: 8192 }, host, settings).ctxSize).toBe(8192);
    expect(resolveSpec({ ...model, contextLength: 4096, ctxSize: 0 }, host, settings).ctxSize).toBe(0);
    expect(resolveSpec({ ...model, contextLength: 4096 }, host, { ...settings, ctxSize: 0 }).ctxSize).toBe(0);
  });
  it("names the model's fields when the result is not a valid spec", () => {
    const err = errorOf(() => resolveSpec({ ...model, name: "bad name", port: 80, flashAttn: "maybe", extraFlags: '[{"flag":"--rm"}]' }, host, settings));
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.issues?.map((i) => i.path).sort()).toEqual(["extraFlags.0.flag", "flashAttn", "name", "port"]);
    expect(err.message).toMatch(/model bad name does not make a valid server spec/);
  });
  it("reports an unreadable extraFlags column and an unmappable path", () => {
    expect(errorOf(() => resolveSpec({ ...model, extraFlags: "{oops" }, host, settings)).issues?.[0]?.path).toBe("extraFlags");
    expect(errorOf(() => resolveSpec({ ...model, filePath: "qwen.gguf" }, host, settings)).issues?.[0]?.path).toBe("filePath");
  });

  it("passes the model's prompt cache cap as cacheRamMiB (--cache-ram), and nothing when it has none", () => {
    expect(resolveSpec({ ...model, cacheRamMiB: 0 }, host, settings).cacheRamMiB).toBe(0);
    expect(resolveSpec({ ...model, cacheRamMiB: 2048 }, host, settings).cacheRamMiB).toBe(2048);
    // An agent without "cache-ram" refuses a spec naming the field, so it is left out when unset.
    expect("cacheRamMiB" in resolveSpec({ ...model, cacheRamMiB: null }, host, settings)).toBe(false);
  });
});

describe("specForAgent", () => {
  const capped = () => resolveSpec({ ...model, cacheRamMiB: 512 } as SpecModel, host, settings);
  it("an agent older than cache-ram gets the spec without cacheRamMiB (its strict schema would refuse it), with the reason to show", () => {
    const older = specForAgent(capped(), ["stop-cause", "model-shape"], "mac-studio");
    expect(older.spec.cacheRamMiB).toBeUndefined();
    expect(older.dropped).toMatch(/--cache-ram 512 MiB.*update the agent on mac-studio/);
    // What the older agent's own schema (without the field) accepts.
    expect(serverSpecSchema.omit({ cacheRamMiB: true }).strict().safeParse(older.spec).success).toBe(true);
  });
  it("an agent with cache-ram, a spec without a cap, or an agent not heard from yet: unchanged", () => {
    expect(specForAgent(capped(), ["cache-ram"], "h")).toEqual({ spec: capped(), dropped: null });
    const plain = resolveSpec(model, host, settings);
    expect(specForAgent(plain, [], "h")).toEqual({ spec: plain, dropped: null });
    expect(specForAgent(capped(), null, "h").dropped).toBeNull();
  });
});

describe("threads: auto unless set", () => {
  it("no count on the model or globally: the spec has none (no --threads); a model's count wins, then the global one", () => {
    const auto = resolveSpec(model, host, { ...settings, threads: null });
    expect(auto).not.toHaveProperty("threads");
    expect(serverSpecSchema.parse(auto)).not.toHaveProperty("threads");
    expect(resolveSpec({ ...model, threads: 3 }, host, { ...settings, threads: null }).threads).toBe(3);
    expect(resolveSpec(model, host, { ...settings, threads: 6 }).threads).toBe(6);
  });

  it("an agent older than threads-auto (its schema needs a count) gets -1, every logical CPU of its host; a newer one none; a set count stays", () => {
    const auto = resolveSpec(model, host, { ...settings, threads: null });
    expect(specForAgent(auto, ["cache-ram"], "mac").spec.threads).toBe(-1);
    expect(specForAgent(auto, ["cache-ram", "threads-auto"], "mac").spec).toEqual(auto);
    expect(specForAgent({ ...auto, threads: 4 }, ["cache-ram"], "mac").spec.threads).toBe(4);
  });
});
