/**
 * The extra llama-server flags a spec may carry, and the kind of value each
 * takes. Plain data with no imports, so the dashboard's form can use the same
 * list without bringing zod and the protocol into the browser bundle.
 */
export const EXTRA_FLAGS = {
  "--metrics": "none",
  "--cont-batching": "none",
  "--no-cont-batching": "none",
  "--no-webui": "none",
  "--jinja": "none",
  "--embeddings": "none",
  // /v1/embeddings refuses pooling "none" (a model's GGUF may name none); llama-server itself starts with it.
  "--pooling": "choice",
  "--reranking": "none",
  "--slots": "none",
  "--seed": "integer",
  "--temp": "number",
  "--top-k": "integer",
  "--top-p": "number",
  "--n-predict": "integer",
  "--rope-freq-base": "number",
  "--rope-freq-scale": "number",
  "--cache-type-k": "choice",
  "--cache-type-v": "choice",
  "--sleep-idle-seconds": "integer",
  "--timeout": "integer",
  "--threads-http": "integer",
  "--chat-template": "word",
} as const satisfies Record<string, "none" | "integer" | "number" | "choice" | "word">;
export type ExtraFlagName = keyof typeof EXTRA_FLAGS;
export type ExtraFlagKind = (typeof EXTRA_FLAGS)[ExtraFlagName];
type ChoiceFlag = { [F in ExtraFlagName]: (typeof EXTRA_FLAGS)[F] extends "choice" ? F : never }[ExtraFlagName];

/** llama.cpp's KV cache types (common/arg.cpp kv_cache_types; `llama-server --help` lists them as "allowed values"). */
const CACHE_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"] as const;

/**
 * The values a "choice" flag takes: llama-server refuses any other at start ("error while handling
 * argument"), so a save refuses it first. As common/arg.cpp of the build this project runs lists them.
 */
export const EXTRA_FLAG_CHOICES: Record<ChoiceFlag, readonly string[]> = {
  "--pooling": ["none", "mean", "cls", "last", "rank"],
  "--cache-type-k": CACHE_TYPES,
  "--cache-type-v": CACHE_TYPES,
};

/** llama.cpp reads an integer flag with std::stoi: a value outside 32 bits stops llama-server at start. */
export const INT32_MIN = -2_147_483_648;
export const INT32_MAX = 2_147_483_647;

/** Integer flags llama-server takes only part of the 32-bit range of (it refuses the rest at start), in words and as a test. */
const INTEGER_RANGES: Partial<Record<ExtraFlagName, { words: string; allows: (n: number) => boolean }>> = {
  "--sleep-idle-seconds": { words: `-1 (never sleep) or a whole number of seconds from 1 to ${INT32_MAX}`, allows: (n) => n === -1 || n >= 1 },
};

/**
 * llama-server flags the model has its own field for, with that field (its key in the API and its label
 * on the model page). The agent sets each from the spec's typed fields, so as an extra flag one is
 * refused with a pointer to the field; short and long spellings both. Labels as the dashboard's model
 * form shows them (src/components/model/model-form.tsx; a test keeps them in step).
 */
export const FLAGS_WITH_FIELDS: Readonly<Record<string, { field: string; label: string }>> = Object.fromEntries(
  (
    [
      [["-m", "--model"], "filePath", "GGUF file"],
      [["--port"], "port", "Port"],
      [["-c", "--ctx-size"], "ctxSize", "Context size"],
      [["-ngl", "--gpu-layers", "--n-gpu-layers"], "gpuLayers", "GPU layers"],
      [["-t", "--threads"], "threads", "Threads"],
      [["-b", "--batch-size"], "batchSize", "Batch size"],
      [["-ub", "--ubatch-size"], "ubatchSize", "Micro-batch size"],
      [["-np", "--parallel"], "parallel", "Parallel slots"],
      [["-fa", "--flash-attn"], "flashAttn", "Flash attention"],
      [["--load-mode", "--mmap", "--no-mmap", "--mlock"], "loadMode", "Load mode"],
      [["-a", "--alias"], "alias", "Alias"],
      [["-cram", "--cache-ram"], "cacheRamMiB", "Prompt cache (MiB)"],
      [["--api-key", "--api-key-file"], "serverApiKeyOff", "No server key (for clients that call the server itself)"],
    ] as const
  ).flatMap(([flags, field, label]) => flags.map((flag) => [flag, { field, label }] as const)),
);

/**
 * Why `value` is not one `flag` takes, naming the flag, the value and what it accepts
 * (`--pooling does not take "nonsense"; it takes none, mean, cls, last or rank`); null when it is one.
 * A flag without a value is given as `value` undefined.
 */
export function extraFlagValueProblem(flag: ExtraFlagName, value: string | undefined): string | null {
  const kind: ExtraFlagKind = EXTRA_FLAGS[flag];
  if (kind === "none") return value === undefined ? null : `${flag} takes no value (got ${JSON.stringify(value)}); remove the value`;
  if (value === undefined) return `${flag} needs a value: ${acceptedValues(flag)}`;
  const got = JSON.stringify(value);
  if (kind === "choice") return EXTRA_FLAG_CHOICES[flag as ChoiceFlag].includes(value) ? null : `${flag} does not take ${got}; it takes ${acceptedValues(flag)}`;
  if (kind === "integer") {
    const n = /^-?\d{1,10}$/.test(value) ? Number(value) : NaN;
    const fits = n >= INT32_MIN && n <= INT32_MAX && (INTEGER_RANGES[flag]?.allows(n) ?? true);
    return fits ? null : `${flag} does not take ${got}; it takes ${acceptedValues(flag)}`;
  }
  if (kind === "number") return /^-?\d{1,12}(\.\d{1,12})?$/.test(value) ? null : `${flag} does not take ${got}; it takes ${acceptedValues(flag)}`;
  return /^[A-Za-z0-9._-]{1,64}$/.test(value) ? null : `${flag} does not take ${got}; it takes ${acceptedValues(flag)}`;
}

/** What `flag` accepts, in words: "none, mean, cls, last or rank", "a whole number from -2147483648 to 2147483647". */
export function acceptedValues(flag: ExtraFlagName): string {
  const kind: ExtraFlagKind = EXTRA_FLAGS[flag];
  if (kind === "choice") {
    const c = EXTRA_FLAG_CHOICES[flag as ChoiceFlag];
    return `${c.slice(0, -1).join(", ")} or ${c[c.length - 1]}`;
  }
  if (kind === "integer") return INTEGER_RANGES[flag]?.words ?? `a whole number from ${INT32_MIN} to ${INT32_MAX}`;
  if (kind === "number") return "a decimal number such as 0.8 or -1";
  if (kind === "word") return "a plain name (letters, digits, '.', '_', '-'; at most 64 characters)";
  return "no value";
}

/** Why `flag` cannot be an extra flag: the model's field for it, by its label, or the allowlist. */
export function extraFlagNameProblem(flag: unknown): string {
  const shown = JSON.stringify(flag);
  if (typeof flag === "string" && Object.hasOwn(FLAGS_WITH_FIELDS, flag)) {
    const f = FLAGS_WITH_FIELDS[flag]!;
    return `${flag} has its own field: set "${f.label}" (${f.field}) on the model instead of an extra flag`;
  }
  return `flag ${shown} is not allowed; allowed: ${Object.keys(EXTRA_FLAGS).join(", ")}`;
}
