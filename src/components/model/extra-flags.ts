/**
 * The agent's allowlist of extra llama-server flags, for the form's picker.
 * Kept here rather than imported, because the protocol module brings zod
 * into the browser bundle; `satisfies` makes the compiler hold the two lists
 * equal (a flag added there is missing here, or one removed there is an
 * excess property here: both are type errors).
 */
import type { EXTRA_FLAGS } from "synapse-host-agent/protocol";

type FlagKinds = typeof EXTRA_FLAGS;
export type ExtraFlagName = keyof FlagKinds;

export const EXTRA_FLAG_KINDS = {
  "--metrics": "none",
  "--cont-batching": "none",
  "--no-cont-batching": "none",
  "--no-webui": "none",
  "--jinja": "none",
  "--embeddings": "none",
  "--slots": "none",
  "--seed": "integer",
  "--temp": "number",
  "--top-k": "integer",
  "--top-p": "number",
  "--n-predict": "integer",
  "--rope-freq-base": "number",
  "--rope-freq-scale": "number",
  "--cache-type-k": "cache-type",
  "--cache-type-v": "cache-type",
  "--sleep-idle-seconds": "integer",
  "--timeout": "integer",
  "--threads-http": "integer",
  "--chat-template": "word",
} as const satisfies FlagKinds;

export const EXTRA_FLAG_NAMES = Object.keys(EXTRA_FLAG_KINDS) as ExtraFlagName[];

export const VALUE_HINT: Record<(typeof EXTRA_FLAG_KINDS)[ExtraFlagName], string> = {
  none: "no value",
  integer: "a whole number",
  number: "a number",
  "cache-type": "f16, q8_0, q4_0 …",
  word: "a plain name",
};
