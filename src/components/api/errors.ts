/**
 * What the dashboard reads from an API error: the message to show, the
 * field issues (`error.data.issues`, [{path, message}]) to put beside their
 * inputs, and whether the API wants the token (HTTP 401).
 */

export interface FieldIssue {
  path: string;
  message: string;
}

/** Field path → message(s), joined when one field has several. */
export type FieldErrors = Record<string, string>;

interface ErrorLike {
  message?: unknown;
  data?: { issues?: unknown; httpStatus?: unknown; code?: unknown } | null;
  shape?: { code?: unknown; data?: { httpStatus?: unknown } } | null;
  meta?: { response?: { status?: unknown } | null } | null;
}

function asErrorLike(error: unknown): ErrorLike | null {
  return typeof error === "object" && error !== null ? (error as ErrorLike) : null;
}

export function issuesOf(error: unknown): FieldIssue[] {
  const raw = asErrorLike(error)?.data?.issues;
  if (!Array.isArray(raw)) return [];
  return raw.filter((i): i is FieldIssue => typeof i === "object" && i !== null && typeof (i as FieldIssue).path === "string" && typeof (i as FieldIssue).message === "string");
}

/** Issues keyed by field path; a path with a prefix (e.g. "input.port") is also keyed by its last segment. */
export function fieldErrorsOf(error: unknown, prefix = ""): FieldErrors {
  const out: FieldErrors = {};
  for (const issue of issuesOf(error)) {
    let path = issue.path;
    if (prefix && path.startsWith(`${prefix}.`)) path = path.slice(prefix.length + 1);
    out[path] = out[path] ? `${out[path]}; ${issue.message}` : issue.message;
  }
  return out;
}

export function errorMessage(error: unknown): string {
  const e = asErrorLike(error);
  if (e && typeof e.message === "string" && e.message) return e.message;
  return String(error);
}

export function httpStatusOf(error: unknown): number | null {
  const e = asErrorLike(error);
  const candidates = [e?.meta?.response?.status, e?.data?.httpStatus, e?.shape?.data?.httpStatus];
  for (const c of candidates) if (typeof c === "number") return c;
  return null;
}

/** True when the API refused the request for want of the token. */
export function isUnauthorized(error: unknown): boolean {
  const e = asErrorLike(error);
  return httpStatusOf(error) === 401 || e?.data?.code === "UNAUTHORIZED";
}
