/** The agent's allowlist of extra llama-server flags (zod-free, shared with the agent), for the form's picker. */
import { EXTRA_FLAGS, type ExtraFlagName } from "synapse-host-agent/extra-flags";

export type { ExtraFlagName };
export const EXTRA_FLAG_KINDS = EXTRA_FLAGS;

export const EXTRA_FLAG_NAMES = Object.keys(EXTRA_FLAG_KINDS) as ExtraFlagName[];

export const VALUE_HINT: Record<(typeof EXTRA_FLAG_KINDS)[ExtraFlagName], string> = {
  none: "no value",
  integer: "a whole number",
  number: "a number",
  "cache-type": "f16, q8_0, q4_0 …",
  word: "a plain name",
};
