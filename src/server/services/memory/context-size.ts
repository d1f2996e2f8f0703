/**
 * The one rule for a model's context size, read by everything that needs it: the spec the agent runs
 * (registry/spec.ts), the memory estimate and start plan (estimate.ts, model-estimator.ts), the
 * command preview and the model page. What is shown, planned and run therefore agree.
 *
 * - A per-model `ctxSize` is used as given: a user may want more than the trained context (RoPE
 *   scaling flags among the extra flags), or less.
 * - `ctxSize` 0 (per model or as the default) keeps llama.cpp's meaning: the model's trained context.
 * - A model on the global default (`ctxSize` null) whose GGUF states a smaller trained context
 *   (`<arch>.context_length`, Model.contextLength) runs with its trained context instead. llama.cpp
 *   does not cap `--ctx-size` at n_ctx_train: it only warns ("n_ctx_per_seq > n_ctx_train") and
 *   allocates the KV cache for every cell asked, memory the model cannot use well (it was never
 *   trained past n_ctx_train), and which the memory plan would charge, refuse or evict for. So a
 *   default of 32768 means "up to 32768", as LM Studio and Ollama treat theirs.
 *
 * A server already running when the rule (or a setting) changes keeps the context it started with: the
 * app adopts live servers as they are (reconciler.ts: first contact keeps a live server, same pid) and
 * never restarts one because its spec changed (the agent answers a start with another spec CONFLICT,
 * "restart it to apply the current settings"). So an app upgrade restarts nothing; the capped context
 * applies at the model's next start.
 *
 * Pure and free of server imports: the dashboard's model form reads it too.
 */

/** The model's fields the rule reads (a Prisma Model row has them). */
export interface ContextModel {
  /** Per-model `--ctx-size` override; null: the global default. */
  ctxSize: number | null;
  /** Trained context from the GGUF (`<arch>.context_length`), tokens; null when not read. */
  contextLength: number | null;
}

/** The global default (the RuntimeSettings row's `ctxSize`, tokens; 0 = each model's trained context). */
export interface ContextDefaults {
  ctxSize: number;
}

export interface ContextSize {
  /** The `--ctx-size` value the spec carries, tokens; 0 = llama-server takes the trained context. */
  ctxSize: number;
  /** Tokens the server's context holds: `ctxSize`, or the trained context for 0 (0 when that is unknown). */
  tokens: number;
  /** The global default the model's smaller trained context replaced; null when the cap did not apply. */
  cappedDefault: number | null;
}

/** A trained context the rule can use: a positive whole number of tokens. */
function knownTrained(contextLength: number | null): number | null {
  return contextLength !== null && Number.isInteger(contextLength) && contextLength > 0 ? contextLength : null;
}

/** The context a model's server runs with (see the module's comment for the rule and why). Pure. */
export function contextSize(model: ContextModel, settings: ContextDefaults): ContextSize {
  const trained = knownTrained(model.contextLength);
  let ctxSize = model.ctxSize ?? settings.ctxSize;
  let cappedDefault: number | null = null;
  if (model.ctxSize === null && trained !== null && settings.ctxSize > trained) {
    ctxSize = trained;
    cappedDefault = settings.ctxSize;
  }
  return { ctxSize, tokens: ctxSize === 0 ? (trained ?? 0) : ctxSize, cappedDefault };
}

/** The context a model's server runs with, tokens (0 = its trained context, when known; else 0). */
export function effectiveContext(model: ContextModel, settings: ContextDefaults): number {
  return contextSize(model, settings).tokens;
}

/** One line saying the cap applied, for the command preview, the estimate and the form; null when it did not. */
export function contextCapNote(c: ContextSize): string | null {
  return c.cappedDefault === null ? null : `the model's own context (${c.ctxSize}) is below the default ${c.cappedDefault}`;
}

/**
 * One line when a model's own `ctxSize` is above its trained context: llama-server then caps each slot at
 * the trained context (its log: "the slot context … exceeds the training context of the model … capping")
 * and still allocates the KV cache for the whole size, which the estimate charges. Null otherwise.
 */
export function contextAboveTrainedNote(model: ContextModel): string | null {
  const trained = knownTrained(model.contextLength);
  if (model.ctxSize === null || model.ctxSize <= 0 || trained === null || model.ctxSize <= trained) return null;
  return `${model.ctxSize} is above the model's trained context (${trained}): llama-server serves at most ${trained} tokens a slot, and still allocates the KV cache for ${model.ctxSize}`;
}
