/**
 * The model page's memory-estimate panel names what it cannot estimate as the model form names a
 * refused save (form-failure.ts, flag-rows.ts): by the field's label, a flag row by its flag.
 */
import { failureFromError, wordIssues } from "~/components/form/form-failure";
import { flagRowLabel, type FlagRow } from "./flag-rows";

/**
 * A refused estimate (a tRPC client error, or anything thrown) → the panel's line, e.g.
 * "Cannot estimate these values: Extra flag --seed: needs an integer; Context size: must be …".
 *
 * `sent`: the flag rows the estimate was asked with, in order (the rows `input.extraFlags` was made
 * from). The server names a row by its index in that list ("extraFlags.2.value"); the issue is named
 * by the flag of the row at that index as sent, never by the form's rows now, where a row removed
 * since moves another flag to that index. `fieldLabel`: the form's label of any other path
 * ("ctxSize" → "Context size"); undefined names the issue by its path. An error without issues is
 * shown by its own message.
 */
export function estimateFailureText(error: unknown, sent: readonly FlagRow[], fieldLabel: (path: string) => string | undefined): string {
  const failure = failureFromError(error, { extraFlags: sent.map((r) => r.key) });
  const issues = wordIssues(failure, (path) => flagRowLabel(path, sent) ?? fieldLabel(path));
  const what = issues.length > 0 ? issues.map((i) => i.text).join("; ") : (failure.message ?? "the server gave no reason");
  return `Cannot estimate these values: ${what}`;
}
