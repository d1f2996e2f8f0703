/**
 * The model page's memory-estimate panel names what it cannot estimate as the model form names a
 * refused save (form-failure.ts, flag-rows.ts): by the field's label, a flag row by its flag.
 *
 * Values the API would refuse are caught in the browser first, by the API's own input schema
 * (`modelEstimateInput`, the one models.estimate parses with, imported, not copied), and worded the same
 * way, so the panel never sends a request it knows will be refused (each one an HTTP 400 in the browser's
 * console, one per keystroke). The API's refusal stays for other clients and for what only the server
 * can check (an unknown model).
 */
import { failureFromError, failureFromIssues, wordIssues, type FormFailure } from "~/components/form/form-failure";
import { issuesFromZod } from "~/server/services/errors";
import { modelEstimateInput } from "~/server/services/registry/schemas";
import { flagRowLabel, type FlagRow } from "./flag-rows";

type FieldLabelOf = (path: string) => string | undefined;

function refusalText(failure: FormFailure, sent: readonly FlagRow[], fieldLabel: FieldLabelOf): string {
  const issues = wordIssues(failure, (path) => flagRowLabel(path, sent) ?? fieldLabel(path));
  const what = issues.length > 0 ? issues.map((i) => i.text).join("; ") : (failure.message ?? "the server gave no reason");
  return `Cannot estimate these values: ${what}`;
}

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
export function estimateFailureText(error: unknown, sent: readonly FlagRow[], fieldLabel: FieldLabelOf): string {
  return refusalText(failureFromError(error, { extraFlags: sent.map((r) => r.key) }), sent, fieldLabel);
}

/**
 * The panel's line for values models.estimate would refuse, checked here without a request; null when
 * the API's input schema accepts them. `input`: what the panel would ask with (`{ id, ctxSize, …,
 * extraFlags }`); `sent` and `fieldLabel` as for `estimateFailureText`, whose words this gives for the
 * same values: "Cannot estimate these values: Context size: must be between 0 and 1048576 (…)".
 */
export function estimateRefusal(input: unknown, sent: readonly FlagRow[], fieldLabel: FieldLabelOf): string | null {
  const parsed = modelEstimateInput.safeParse(input);
  if (parsed.success) return null;
  return refusalText(failureFromIssues(issuesFromZod(parsed.error), { extraFlags: sent.map((r) => r.key) }), sent, fieldLabel);
}
