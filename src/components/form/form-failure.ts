/**
 * What a form shows after a refused save, wherever the server's issues point.
 *
 * A server issue ({path, message}) goes beside its input only when the form
 * shows that input now. An issue for a field the form does not show (hidden
 * in the current mode, e.g. the host form's `modelPorts` in direct mode, or
 * a field the form does not have at all) is listed in the summary above the
 * form; an error without issues is shown by its own message. So every refusal
 * says what to fix.
 *
 * Every issue is worded with the field's label as the form shows it, never
 * its path: "Model ports: models use ports outside 8090-8099", "Extra flag
 * --seed: needs an integer". The server's message is kept as is, except that
 * a label may say what name the messages of its field begin with (a flag
 * row's flag, "--seed needs an integer"): that name is then not said twice.
 *
 * Rows of a list (the model form's extra flags) are named by a stable key the
 * form gives each row, not by their index: a failure turns the server's
 * "extraFlags.2.value" into "extraFlags.<key of the third row sent>.value",
 * so the issue stays with its row when a row above it is removed.
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
  /**
   * Issues keyed by field path (`fieldErrorsOf`): "modelPorts", "" (no field); a row of a list by
   * its key, "extraFlags.row3.value". Several messages of one path are joined with "; ".
   */
  errors: FieldErrors;
}

/** List field path → the keys of its rows, in order (e.g. `{ extraFlags: ["row1", "row3"] }`). */
export type RowKeys = Readonly<Record<string, readonly string[]>>;

/** An issue listed above the form: its path and the worded line ("Model ports: …"; the message alone for path ""). */
export interface ListedIssue {
  path: string;
  text: string;
}

/** What the form shows for a failure, given the fields it shows now. */
export interface ShownFailure {
  /** The line above the form, e.g. "Not saved: fix the fields marked below."; null: no failure. */
  summary: string | null;
  /** Worded issues whose field is shown, by their full path ("Port: must be …"): put beside their inputs. */
  fields: FieldErrors;
  /** Issues whose field is not shown, in the server's order: listed under the summary. */
  unplaced: ListedIssue[];
}

/**
 * A field's label as its issues are worded with: the text ("Model ports"), or the text and the name
 * the server's messages about that field begin with (a flag row: `{ text: "Extra flag --seed", names:
 * "--seed" }`). A message that begins with that name is worded without it ("Extra flag --seed: needs an
 * integer", not "…: --seed needs an integer"); any other message is kept whole.
 */
export type FieldLabel = string | { text: string; names: string };

/** How a form is laid out now: what `placeFailure` needs to place and word a failure. */
export interface FormLayout {
  /** The field paths the form renders now; each also covers the paths inside it ("extraFlags" covers "extraFlags.x"). */
  shown: readonly string[];
  /** The rows each list field renders now, by key: a row's issue is shown only while its key is here. */
  rows?: RowKeys;
  /**
   * The label the form gives a field path ("Model ports"), or undefined for a path the form has
   * no label for; the issue is then worded with its path. See `labelsByPrefix`.
   */
  label: (path: string) => FieldLabel | undefined;
  /** How the summary starts: "Not saved" (the default) or e.g. "Not created". */
  lead?: string;
}

/**
 * A refused request (a tRPC client error, or anything thrown) → the failure to keep.
 * `rows`: the keys of the rows of each list field as they were sent; an issue under a row's
 * index ("extraFlags.2.value") is kept under that row's key ("extraFlags.row7.value"). An index
 * with no row sent keeps its number (listed above the form).
 */
export function failureFromError(error: unknown, rows: RowKeys = {}): FormFailure {
  return { message: errorMessage(error), errors: keyRows(fieldErrorsOf(error), rows) };
}

/**
 * Issues found before sending ({path, message}, paths as the server gives them: "ctxSize",
 * "extraFlags.2.value"), e.g. by the API's own input schema run in the browser → the failure to keep,
 * keyed as `failureFromError` keys a refusal of the same values (`rows`: as there). message: null.
 */
export function failureFromIssues(issues: readonly FieldIssue[], rows: RowKeys = {}): FormFailure {
  const errors: FieldErrors = {};
  for (const { path, message } of issues) errors[path] = errors[path] ? `${errors[path]}; ${message}` : message;
  return { message: null, errors: keyRows(errors, rows) };
}

/** The form's own checks before sending (numbers that do not parse), keyed as `FormFailure.errors` → the failure to keep. */
export function failureFromChecks(errors: FieldErrors): FormFailure {
  return { message: null, errors };
}

/** The list field that `path` is inside, and the segment after it (the row's index or key); null when none. */
function rowOf(path: string, lists: Iterable<string>): { list: string; row: string; rest: string } | null {
  for (const list of lists) {
    if (!path.startsWith(`${list}.`)) continue;
    const after = path.slice(list.length + 1);
    const dot = after.indexOf(".");
    return { list, row: dot < 0 ? after : after.slice(0, dot), rest: dot < 0 ? "" : after.slice(dot) };
  }
  return null;
}

function keyRows(errors: FieldErrors, rows: RowKeys): FieldErrors {
  const lists = Object.keys(rows);
  if (lists.length === 0) return errors;
  const out: FieldErrors = {};
  for (const [path, message] of Object.entries(errors)) {
    const at = rowOf(path, lists);
    const key = at && /^\d+$/.test(at.row) ? rows[at.list]![Number(at.row)] : undefined;
    const keyed = at && key !== undefined ? `${at.list}.${key}${at.rest}` : path;
    out[keyed] = out[keyed] ? `${out[keyed]}; ${message}` : message;
  }
  return out;
}

/** True when `path` is the field `field` or inside it ("extraFlags.0.value" is inside "extraFlags"). */
function isInside(path: string, field: string): boolean {
  return path === field || path.startsWith(`${field}.`);
}

/**
 * The failure without the issues at `path` or inside it: what a form keeps when the user edits or
 * removes that field (a flag row: "extraFlags.row3"). Null when no issue is left of a failure that
 * had some (nothing left to fix); a failure without issues is kept as it is.
 */
export function clearIssues(failure: FormFailure | null, path: string): FormFailure | null {
  if (!failure) return null;
  const paths = Object.keys(failure.errors);
  const kept = paths.filter((p) => !isInside(p, path));
  if (kept.length === paths.length) return failure;
  if (kept.length === 0) return null;
  return { ...failure, errors: Object.fromEntries(kept.map((p) => [p, failure.errors[p]!])) };
}

/**
 * A `FormLayout.label` from a table of labels by field path: a path gets the label of the longest
 * labelled path it is inside ("models.0" → the label of "models"); undefined when none.
 */
export function labelsByPrefix(labels: Readonly<Record<string, string>>): (path: string) => string | undefined {
  return (path) => {
    for (let p = path; p !== ""; p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "") {
      if (Object.hasOwn(labels, p)) return labels[p];
    }
    return undefined;
  };
}

/**
 * One issue as the form words it: "Label: message"; a path without a label is named by the path; path "" by
 * nothing. A label that names what its messages begin with ("--seed") takes that name off the message's
 * start ("--seed needs an integer" → "needs an integer"), only where the name is followed by a space or ":".
 */
function word(path: string, message: string, label: FormLayout["label"]): string {
  if (path === "") return message;
  const l = label(path) ?? path;
  if (typeof l === "string") return `${l}: ${message}`;
  const rest = message.startsWith(l.names) ? /^[\s:]+(\S[\s\S]*)$/.exec(message.slice(l.names.length))?.[1] : undefined;
  return `${l.text}: ${rest ?? message}`;
}

/**
 * Every issue of a failure worded as a form words it ("Label: message"), in the server's order,
 * placed nowhere: for a panel that shows a refusal as one line of text (the model page's memory
 * estimate). Empty for a failure without issues (its `message` says what went wrong).
 */
export function wordIssues(failure: FormFailure, label: FormLayout["label"]): ListedIssue[] {
  return Object.entries(failure.errors).map(([path, message]) => ({ path, text: word(path, message, label) }));
}

function isShown(path: string, layout: FormLayout): boolean {
  if (path === "") return false;
  const at = rowOf(path, Object.keys(layout.rows ?? {}));
  if (at) return layout.rows![at.list]!.includes(at.row);
  return layout.shown.some((f) => isInside(path, f));
}

/** Splits a failure into the worded issues beside shown fields and the rest, and words the summary. */
export function placeFailure(failure: FormFailure | null, layout: FormLayout): ShownFailure {
  if (!failure) return { summary: null, fields: {}, unplaced: [] };
  const lead = layout.lead ?? "Not saved";
  const fields: FieldErrors = {};
  const unplaced: ListedIssue[] = [];
  for (const [path, message] of Object.entries(failure.errors)) {
    if (isShown(path, layout)) fields[path] = word(path, message, layout.label);
    else unplaced.push({ path, text: word(path, message, layout.label) });
  }
  const placed = Object.keys(fields).length > 0;
  let summary: string;
  if (placed && unplaced.length > 0) summary = `${lead}: fix what is listed here and the fields marked below.`;
  else if (placed) summary = `${lead}: fix the fields marked below.`;
  else if (unplaced.length > 0) summary = `${lead}: fix what is listed here.`;
  else summary = `${lead}: ${failure.message ?? "the form's checks failed without saying why"}`;
  return { summary, fields, unplaced };
}
