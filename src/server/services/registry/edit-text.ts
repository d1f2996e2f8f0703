/**
 * How an edit event shows a field's change: `field old → new`, for people
 * reading the Activity page and the app log ("what changed to what").
 */

/** A value in an edit event: "none" for null, long text (a path, a fingerprint, flags) cut to 48 characters. */
export function shownValue(v: unknown): string {
  if (v === null || v === undefined) return "none";
  const t = typeof v === "string" ? v : JSON.stringify(v);
  return t.length > 48 ? `${t.slice(0, 45)}…` : t;
}

/**
 * "port 8080 → 8081, ctxSize none → 8192": each changed field with its old
 * and new value; the fields in `bare` by name alone (a name the message
 * already says, an id nobody reads).
 */
export function changeList(fields: readonly string[], before: Record<string, unknown>, after: Record<string, unknown>, bare: ReadonlySet<string> = new Set()): string {
  return fields.map((f) => (bare.has(f) ? f : `${f} ${shownValue(before[f])} → ${shownValue(after[f])}`)).join(", ");
}
