/** The agent's allowlist of extra llama-server flags (zod-free, shared with the agent), for the form's picker. */
import { acceptedValues, EXTRA_FLAG_CHOICES, EXTRA_FLAGS, type ExtraFlagName } from "synapse-host-agent/extra-flags";

export type { ExtraFlagName };
export const EXTRA_FLAG_KINDS = EXTRA_FLAGS;

export const EXTRA_FLAG_NAMES = Object.keys(EXTRA_FLAG_KINDS) as ExtraFlagName[];

/** The value input's placeholder for `flag`: its values when they are a closed set ("none, mean, cls …"), else their kind. */
export function valueHint(flag: ExtraFlagName): string {
  const kind = EXTRA_FLAG_KINDS[flag];
  if (kind === "choice") {
    const values = EXTRA_FLAG_CHOICES[flag as keyof typeof EXTRA_FLAG_CHOICES];
    return values.length > 5 ? `${values.slice(0, 4).join(", ")} …` : values.join(", ");
  }
  if (kind === "none") return "no value";
  if (kind === "integer") return "a whole number";
  if (kind === "number") return "a number";
  return acceptedValues(flag).replace(/ \(.*\)$/, "");
}
