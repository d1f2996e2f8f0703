/**
 * How the fleet asks for a model's memory estimate: a function of the model's registry row and the
 * global defaults (what its llama-server will run with). The "lower its context to N" advice and the
 * model page's live estimate pass the row with other values over it. The full estimator (weights from
 * the stored shape, KV cache, compute buffer, prompt cache: estimate.ts) is the default; a model whose
 * shape was never read (saved before its agent reported shapes) is charged its weights from the file
 * size, a lower bound, and the estimate's notes say so.
 */
import type { Model, RuntimeSettings } from "~/generated/prisma/client";
import { estimateForModel } from "./estimate";
import { hasEstimate, type Estimate } from "./plan";

/** A model row (saved, or with unsaved form values over it) and the global defaults → its estimate. Pure. */
export type ModelEstimator = (model: Model, settings: RuntimeSettings) => Estimate;

/** The context a model's server runs with, tokens: the one rule, in context-size.ts. */
export { effectiveContext } from "./context-size";

/** Weights only, from the file size discovery stored (all shards of a split set). */
export const weightsOnlyEstimator: ModelEstimator = (model) => {
  if (model.sizeBytes === null || !(model.sizeBytes > 0)) return { unavailable: `no memory estimate for ${model.name}: its file size is not known yet (run discovery, or save the model again)` };
  return {
    weightsBytes: model.sizeBytes,
    kvCacheBytes: 0,
    computeBytes: 0,
    promptCacheBytes: 0,
    totalBytes: model.sizeBytes,
    notes: ["weights only, from the file size: KV cache and compute buffer not estimated"],
  };
};

/**
 * The fleet's default: the model's stored shape (estimate.ts); without one, its weights from the file size
 * (a lower bound: what does not fit by its weights alone does not fit at all), noting why.
 */
export const shapeOrWeightsEstimator: ModelEstimator = (model, settings) => {
  const full = estimateForModel(model, settings);
  if (hasEstimate(full) || model.shape) return full;
  const weights = weightsOnlyEstimator(model, settings);
  return hasEstimate(weights) ? { ...weights, notes: [full.unavailable, ...weights.notes] } : full;
};
