/**
 * Numeric inputs are text boxes (so the server, not the browser, judges a
 * value like 80 for a port and its message appears inline). Before sending,
 * a value must at least be a number; "" means "use the default" (null).
 */

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

export function parseOptionalInt(text: string): Parsed<number | null> {
  const t = text.trim();
  if (t === "") return { ok: true, value: null };
  if (!/^-?\d{1,12}$/.test(t)) return { ok: false, message: "must be a whole number (or empty for the default)" };
  return { ok: true, value: Number(t) };
}

export function parseRequiredInt(text: string): Parsed<number> {
  const t = text.trim();
  if (t === "") return { ok: false, message: "is required" };
  if (!/^-?\d{1,12}$/.test(t)) return { ok: false, message: "must be a whole number" };
  return { ok: true, value: Number(t) };
}

export const intText = (n: number | null | undefined): string => (n === null || n === undefined ? "" : String(n));
