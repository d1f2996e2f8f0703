/**
 * The model form's extra-flag rows: each has a key for as long as it exists, so a refused save's
 * issue stays with its row (React's key, and the path "extraFlags.<key>…", see
 * form-failure.ts) when a row above it is removed, and is worded with the row's flag.
 */
import type { FieldLabel } from "~/components/form/form-failure";
import type { ExtraFlagName } from "./extra-flags";

/** One row as the form holds it; `value` is the text typed ("" for a flag without a value). */
export interface FlagRow {
  key: string;
  flag: ExtraFlagName;
  value: string;
}

/** The form's label of the extra flags as a whole (the list's own issues, "at most 32 extra flags"). */
export const EXTRA_FLAGS_LABEL = "Extra flags";

let lastKey = 0;

/** A new row with a key no other row of this page has ("flag7": never a number, so never taken for a row's index). */
export function newFlagRow(flag: ExtraFlagName, value = ""): FlagRow {
  lastKey += 1;
  return { key: `flag${lastKey}`, flag, value };
}

/** The path of a row's issues: "extraFlags.<key>" (its value's: "extraFlags.<key>.value"). */
export function flagRowPath(key: string): string {
  return `extraFlags.${key}`;
}

/**
 * The label of an issue's path inside a row, as the form words it: "extraFlags.flag7",
 * "extraFlags.flag7.flag" or "extraFlags.flag7.value" → the row's label "Extra flag --seed", which
 * names "--seed" (the server's messages begin with the flag: "--seed needs an integer" is worded
 * "Extra flag --seed: needs an integer", see form-failure.ts FieldLabel); a key no row has now →
 * "Extra flags". Undefined for a path outside the rows.
 */
export function flagRowLabel(path: string, rows: readonly FlagRow[]): FieldLabel | undefined {
  const m = /^extraFlags\.([^.]+)(?:\.(.*))?$/.exec(path);
  if (!m) return undefined;
  const row = rows.find((r) => r.key === m[1]);
  if (!row) return EXTRA_FLAGS_LABEL;
  return { text: `Extra flag ${row.flag}`, names: row.flag };
}
