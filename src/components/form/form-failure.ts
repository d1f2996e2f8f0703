/**
 * What a form shows after a refused save, wherever the server's issues point.
 *
 * A server issue ({path, message}) goes beside its input only when the form
 * shows that input now. An issue for a field the form does not show (hidden
 * in the current mode, e.g. the host form's `modelPorts` in direct mode, or
 * a field the form does not have at all) is listed in the summary above the
 * form with the field's name; an error without issues is shown by its own
 * message. So every refusal says what to fix.
 *
 * Placing is done at render time from the fields shown then, so a field that
 * appears or disappears after the refusal (a mode switched back and forth)
 * moves its message between the field and the summary.
 */
import { errorMessage, fieldErrorsOf, type FieldErrors, type FieldIssue } from "~/components/api/errors";

/** A refused save, kept in the form's state until the next save. */
export interface FormFailure {
  /** The error's own message (null: the form's own checks, which have one issue per field). */
  message: string | null;
  /** Issues keyed by field path (`fieldErrorsOf`): "modelPorts", "extraFlags.0.value", "" (no field). */
  errors: FieldErrors;
}

/** What the form shows for a failure, given the fields it shows now. */
export interface ShownFailure {
  /** The line above the form, e.g. "Not saved: fix the fields marked below."; null: no failure. */
  summary: string | null;
  /** Messages of the issues whose field is shown, by their full path: put beside their inputs. */
  fields: FieldErrors;
  /** Issues whose field is not shown, in the server's order: listed under the summary (path "" = no field). */
  unplaced: FieldIssue[];
}

/** A refused request (a tRPC client error, or anything thrown) → the failure to keep. */
export function failureFromError(error: unknown): FormFailure {
  return { message: errorMessage(error), errors: fieldErrorsOf(error) };
}

/** The form's own checks before sending (numbers that do not parse) → the failure to keep. */
export function failureFromChecks(errors: FieldErrors): FormFailure {
  return { message: null, errors };
}

/** True when `path` is the field `field` or inside it ("extraFlags.0.value" is inside "extraFlags"). */
function isInside(path: string, field: string): boolean {
  return path === field || path.startsWith(`${field}.`);
}

/**
 * Splits a failure into the issues beside shown fields and the rest, and
 * words the summary. `shown`: the field paths the form renders now (each
 * also covers the paths inside it). `lead`: how the summary starts, e.g.
 * "Not saved" or "Not created".
 */
export function placeFailure(failure: FormFailure | null, shown: readonly string[], lead = "Not saved"): ShownFailure {
  if (!failure) return { summary: null, fields: {}, unplaced: [] };
  const fields: FieldErrors = {};
  const unplaced: FieldIssue[] = [];
  for (const [path, message] of Object.entries(failure.errors)) {
    if (path !== "" && shown.some((f) => isInside(path, f))) fields[path] = message;
    else unplaced.push({ path, message });
  }
  const placed = Object.keys(fields).length > 0;
  let summary: string;
  if (placed && unplaced.length > 0) summary = `${lead}: fix what is listed here and the fields marked below.`;
  else if (placed) summary = `${lead}: fix the fields marked below.`;
  else if (unplaced.length > 0) summary = `${lead}: fix what is listed here.`;
  else summary = `${lead}: ${failure.message ?? "the form's checks failed without saying why"}`;
  return { summary, fields, unplaced };
}
