/**
 * The memory estimator: what a llama-server holds for a model under given settings, from the model's
 * stored shape (never the file), in bytes per component as llama.cpp's own breakdown names them (model,
 * context, compute) plus the host prompt cache that breakdown leaves out.
 *
 * - Weights: every tensor's bytes over all shards (the type's block size and bytes per block); with mmap
 *   this is what llama.cpp maps, without it what it reads into memory: the same bytes.
 * - KV cache: kv-cache.ts, over the cells context-plan.ts gives (llama-server's `--ctx-size` divided among
 *   `--parallel` slots, each a stream padded to 256 cells; sliding-window layers capped by their window).
 * - Compute: the buffer ggml's allocator reserves for one micro-batch of the model's forward graph
 *   (compute-graph.ts replayed through graph-alloc.ts), which follows ubatch, context and flash attention.
 *   llama-server reserves it for one output per slot (its n_outputs_max is --parallel unless it serves
 *   embeddings), llama-fit-params for an output per token: the latter's compute figure is larger by the
 *   logits of a whole micro-batch (`allOutputs` reproduces it, for comparison).
 * - Prompt cache: llama-server's `--cache-ram` (default 8192 MiB per server; 0 turns it off). It fills up to
 *   that cap with saved prompt states as requests come, so a plan charges the cap.
 *
 * `--fit`: llama-server's `--fit on` (its default) may lower settings the user left unset so the model
 * fits the device memory it sees, and the plan would then describe something else than what runs. The
 * host agent passes `--fit off` to every llama-server that knows the flag (host-agent/src/supervisor/argv.ts),
 * so the settings estimated here are the settings that run; on a host where they do not fit, the plan
 * refuses the start rather than letting llama.cpp shrink the context.
 *
 * The graph is written for the architectures in compute-graph.ts's ARCH_TRAITS; another architecture is
 * estimated with llama's graph, and the estimate's notes say so. Offloading only part of the layers
 * (`--n-gpu-layers` below the layer count) moves bytes between the GPU and the host without changing
 * their sum on Apple Silicon's unified memory; the estimate is that sum.
 */
import { modelShapeSchema, type ModelShape } from "synapse-host-agent/model-shape";
import { GGML_TYPES_BY_NAME } from "synapse-host-agent/ggml-types";
import type { MemoryEstimate, NoEstimate } from "./estimate-types";
import { planContext, type ContextPlan } from "./context-plan";
import { contextAboveTrainedNote, contextCapNote, contextSize } from "./context-size";
import { kvCacheBytes } from "./kv-cache";
import { ARCH_TRAITS, forwardGraph } from "./compute-graph";
import { computeBufferBytes } from "./graph-alloc";

export const MiB = 1024 * 1024;
/** llama-server's `--cache-ram` default (common/common.h cache_ram_mib). */
export const DEFAULT_CACHE_RAM_MIB = 8192;

/** The settings a llama-server runs with, fully resolved (no "use the default" nulls). */
export interface EstimateSettings {
  /** --ctx-size; 0: the model's trained context. */
  ctxSize: number;
  parallel: number;
  batchSize: number;
  ubatchSize: number;
  flashAttn: "on" | "off" | "auto";
  loadMode: "mmap" | "no-mmap" | "mlock";
  gpuLayers: number;
  /** --cache-type-k / --cache-type-v: f16 (llama.cpp's default), q8_0, q4_0, ... */
  cacheTypeK: string;
  cacheTypeV: string;
  /** --cache-ram in MiB; null: llama-server's default (8192). 0 turns the prompt cache off. */
  cacheRamMiB: number | null;
  /**
   * The server computes embeddings (--embeddings, --reranking, a pooling type): every token of a batch
   * is an output. Otherwise llama-server asks for one output per slot (n_outputs_max = --parallel).
   */
  embeddings?: boolean;
  /**
   * Reserve as llama-fit-params does (every token an output, no server limit): for comparing with
   * llama.cpp's own estimate, not for plans.
   */
  allOutputs?: boolean;
}

export function isEstimate(e: MemoryEstimate | NoEstimate): e is MemoryEstimate {
  return !("unavailable" in e);
}

/**
 * Estimates one llama-server's memory. Pure: the same shape and settings give the same bytes.
 * Returns NoEstimate (a sentence saying what to change) for settings llama-server itself refuses:
 * an unknown cache type, a quantized V cache without flash attention, head sizes that do not fill the
 * cache type's blocks.
 */
export function estimateMemory(shape: ModelShape, s: EstimateSettings): MemoryEstimate | NoEstimate {
  const notes: string[] = [];
  const typeK = GGML_TYPES_BY_NAME.get(s.cacheTypeK);
  const typeV = GGML_TYPES_BY_NAME.get(s.cacheTypeV);
  if (!typeK) return { unavailable: `--cache-type-k ${s.cacheTypeK} is not a cache type llama.cpp knows (f16, q8_0, q4_0, ...)` };
  if (!typeV) return { unavailable: `--cache-type-v ${s.cacheTypeV} is not a cache type llama.cpp knows (f16, q8_0, q4_0, ...)` };
  // "auto" turns flash attention on wherever the backend supports it, as CPU and Metal do for these models.
  const flashAttn = s.flashAttn !== "off";
  if (s.flashAttn === "auto") notes.push("flash attention auto: counted as on (CPU and Metal support it)");
  if (!flashAttn && typeV.blockSize > 1) {
    return { unavailable: `a quantized V cache (--cache-type-v ${typeV.name}) needs flash attention on; llama-server refuses it with flash attention off` };
  }
  if (s.parallel < 1 || s.batchSize < 1 || s.ubatchSize < 0 || s.ctxSize < 0) return { unavailable: "context size, parallel slots and batch sizes must be positive" };

  const plan: ContextPlan = planContext({
    ctxSize: s.ctxSize,
    parallel: s.parallel,
    batchSize: s.batchSize,
    ubatchSize: s.ubatchSize,
    kvUnified: false,
    trainedContext: shape.contextLength,
    slidingWindow: shape.slidingWindow,
  });
  if (plan.nCtx === 0) return { unavailable: "the context size is 0 and the model states no trained context: set --ctx-size" };

  let kvCache: number;
  try {
    kvCache = kvCacheBytes(shape, plan, { typeK, typeV, flashAttn });
  } catch (err) {
    return { unavailable: (err as Error).message };
  }

  let traits = ARCH_TRAITS[shape.architecture];
  if (!traits) {
    traits = ARCH_TRAITS.llama!;
    notes.push(`compute buffer for ${shape.architecture} estimated with llama's graph`);
  }
  if (shape.experts > 0) notes.push("mixture of experts: compute buffer estimated as a dense layer of the active experts");
  const compute = computeBufferBytes(
    forwardGraph(shape, traits, {
      tokens: plan.reserveTokens,
      outputs: s.embeddings || s.allOutputs ? plan.nBatch : Math.max(1, s.parallel),
      nKv: plan.nCtxSeq,
      nKvSwa: plan.nCtxSwa,
      flashAttn,
      rotateK: typeK.blockSize > 1 && shape.headSizeK % 64 === 0,
      rotateV: typeV.blockSize > 1 && shape.headSizeV % 64 === 0,
    }),
  );

  const cacheRamMiB = s.cacheRamMiB ?? DEFAULT_CACHE_RAM_MIB;
  const promptCache = Math.max(0, cacheRamMiB) * MiB;
  if (s.cacheRamMiB === null) notes.push(`prompt cache: llama-server's default --cache-ram ${DEFAULT_CACHE_RAM_MIB} MiB`);
  if (plan.nCtx !== (s.ctxSize === 0 ? shape.contextLength : s.ctxSize)) notes.push(`context ${plan.nCtx} (${plan.nCtxSeq} per slot): llama.cpp pads each slot to 256 cells`);

  const weights = shape.weightsBytes;
  return {
    weightsBytes: weights,
    kvCacheBytes: kvCache,
    computeBytes: compute,
    promptCacheBytes: promptCache,
    totalBytes: weights + kvCache + compute + promptCache,
    notes,
  };
}

/** A model row's fields the estimate reads (a Prisma Model has them all). */
export interface EstimateModel {
  name: string;
  /** The stored shape (JSON text, as the registry keeps it), or null when no agent has reported one. */
  shape: string | null;
  ctxSize: number | null;
  /** Trained context from the GGUF (Model.contextLength): a model on the default context runs with no more (context-size.ts). */
  contextLength: number | null;
  parallel: number | null;
  batchSize: number | null;
  ubatchSize: number | null;
  flashAttn: string | null;
  loadMode: string | null;
  gpuLayers: number | null;
  cacheRamMiB: number | null;
  /** JSON text of [{flag, value}] or the parsed list: --cache-type-k / --cache-type-v are read from it. */
  extraFlags: string | readonly unknown[];
}

/** The global runtime defaults a model's nulls fall back to (the RuntimeSettings row). */
export interface EstimateDefaults {
  ctxSize: number;
  parallel: number;
  batchSize: number;
  ubatchSize: number;
  flashAttn: string;
  loadMode: string;
  gpuLayers: number;
}

function flagValue(flags: readonly unknown[], name: string): string | undefined {
  for (const f of flags) {
    if (f && typeof f === "object" && (f as { flag?: unknown }).flag === name) {
      const v = (f as { value?: unknown }).value;
      if (typeof v === "string") return v;
    }
  }
  return undefined;
}

/** The settings a model's server runs with: its own, else the defaults, the context by context-size.ts (as the spec the agent gets). */
export function settingsForModel(model: EstimateModel, d: EstimateDefaults): EstimateSettings {
  let flags: readonly unknown[] = [];
  if (typeof model.extraFlags === "string") {
    try {
      const parsed: unknown = JSON.parse(model.extraFlags);
      if (Array.isArray(parsed)) flags = parsed;
    } catch {
      flags = [];
    }
  } else {
    flags = model.extraFlags;
  }
  const fa = model.flashAttn ?? d.flashAttn;
  const lm = model.loadMode ?? d.loadMode;
  return {
    ctxSize: contextSize(model, d).ctxSize,
    parallel: model.parallel ?? d.parallel,
    batchSize: model.batchSize ?? d.batchSize,
    ubatchSize: model.ubatchSize ?? d.ubatchSize,
    flashAttn: fa === "off" || fa === "auto" ? fa : "on",
    loadMode: lm === "no-mmap" || lm === "mlock" ? lm : "mmap",
    gpuLayers: model.gpuLayers ?? d.gpuLayers,
    cacheTypeK: flagValue(flags, "--cache-type-k") ?? "f16",
    cacheTypeV: flagValue(flags, "--cache-type-v") ?? "f16",
    cacheRamMiB: model.cacheRamMiB,
    embeddings: ["--embeddings", "--reranking"].some((f) => flags.some((x) => (x as { flag?: unknown } | null)?.flag === f)) || (flagValue(flags, "--pooling") ?? "none") !== "none",
  };
}

/**
 * Shapes parsed from their stored text (a start plan estimates every model of its host, each time):
 * the same text always gives the same shape. Frozen through, being shared; bounded, cleared when full.
 */
const parsedShapes = new Map<string, ModelShape>();
const MAX_PARSED_SHAPES = 256;

/** The stored shape, or why there is none (a sentence naming what to do). The shape is shared: read it, never change it. */
export function parseStoredShape(model: Pick<EstimateModel, "name" | "shape">, hostName?: string): ModelShape | NoEstimate {
  const where = hostName ? ` on ${hostName}` : "";
  if (model.shape === null || model.shape === "") {
    return { unavailable: `no memory estimate for ${model.name}: its shape was never read; run discovery again${where} (an agent that does not report model shapes must be updated${where} first)` };
  }
  const known = parsedShapes.get(model.shape);
  if (known) return known;
  let value: unknown;
  try {
    value = JSON.parse(model.shape);
  } catch {
    return { unavailable: `no memory estimate for ${model.name}: its stored shape is not JSON; run discovery again${where}` };
  }
  const r = modelShapeSchema.safeParse(value);
  if (!r.success) return { unavailable: `no memory estimate for ${model.name}: its stored shape is from another version; run discovery again${where}` };
  if (parsedShapes.size >= MAX_PARSED_SHAPES) parsedShapes.clear();
  parsedShapes.set(model.shape, deepFreeze(r.data));
  return r.data;
}

/** Freezes a parsed JSON value and everything in it (a shared shape that someone changed would change every estimate). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * The estimate for a model row under its own settings and the global defaults: the entry point for host
 * budgets, start plans and the dashboard. `hostName` names the host in the NoEstimate sentence.
 */
export function estimateForModel(model: EstimateModel, defaults: EstimateDefaults, hostName?: string): MemoryEstimate | NoEstimate {
  const shape = parseStoredShape(model, hostName);
  if ("unavailable" in shape) return shape;
  const e = estimateMemory(shape, settingsForModel(model, defaults));
  if ("unavailable" in e) return { unavailable: `no memory estimate for ${model.name}: ${e.unavailable}` };
  const ctx = contextSize(model, defaults);
  const note = contextCapNote(ctx) ?? contextAboveTrainedNote(model);
  return note ? { ...e, notes: [`context ${ctx.ctxSize}: ${note}`, ...e.notes] } : e;
}
