/**
 * The one error type services throw. Routers map it to tRPC / HTTP codes
 * (BAD_REQUEST 400, UNAUTHORIZED 401, NOT_FOUND 404, CONFLICT 409,
 * UNAVAILABLE 503, FAILED 502, INTERNAL 500). `issues` name each bad field so
 * the dashboard can put the message beside the input.
 */
import { formatIssues } from "synapse-host-agent/error-text";
export type ServiceErrorCode = "BAD_REQUEST" | "NOT_FOUND" | "CONFLICT" | "UNAVAILABLE" | "FAILED" | "INTERNAL";

export interface FieldIssue {
  /** Field path joined by '.', e.g. "port" or "models.qwen.port". */
  path: string;
  message: string;
}

/**
 * Next bundles each route separately, and the runtime (created once, from
 * instrumentation) throws errors built by another bundle's copy of this
 * class; `instanceof` across copies would be false and a 404 would become a
 * 500. A global brand makes the check hold across bundles.
 */
const BRAND = Symbol.for("synapse.ServiceError");

export class ServiceError extends Error {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
  readonly [BRAND] = true;
  readonly code: ServiceErrorCode;
  readonly issues: FieldIssue[] | undefined;
  readonly data: unknown;
  constructor(code: ServiceErrorCode, message: string, options: { issues?: FieldIssue[]; data?: unknown; cause?: unknown } = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = "ServiceError";
    this.code = code;
    this.issues = options.issues;
    this.data = options.data;
  }

  /** A BAD_REQUEST whose message lists every field problem. */
  static invalid(issues: FieldIssue[]): ServiceError {
    return new ServiceError("BAD_REQUEST", formatIssues(issues), { issues });
  }
}

/** Field issues from a zod error (zod 4), paths joined by '.'. */
export function issuesFromZod(error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> }, prefix = ""): FieldIssue[] {
  return error.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter(Boolean).join("."), message: i.message }));
}
