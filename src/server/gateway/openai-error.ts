/**
 * Errors the gateway answers itself, in OpenAI's error shape
 * (`{ error: { message, type, param, code } }`), which the official clients
 * parse into their APIError classes (status, message, code).
 */
import type { ServerResponse } from "node:http";

export type GatewayErrorType = "invalid_request_error" | "authentication_error" | "permission_error" | "not_found_error" | "conflict_error" | "rate_limit_error" | "server_error" | "service_unavailable";

/** An answer the gateway gives instead of proxying: HTTP status, OpenAI error body, optional Retry-After (seconds). */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly type: GatewayErrorType,
    /** Machine-readable, e.g. "model_not_found", "model_stopped", "queue_full". */
    readonly code: string,
    message: string,
    /** `shouldRetry: false`: only a person can change the outcome (x-should-retry: false; see errorHeaders). */
    readonly options: { retryAfterS?: number; param?: string | null; shouldRetry?: false } = {},
  ) {
    super(message);
    this.name = "GatewayError";
  }
}

export function errorBody(err: GatewayError): string {
  return JSON.stringify({ error: { message: err.message, type: err.type, param: err.options.param ?? null, code: err.code } });
}

/**
 * The headers of an error answer (names as written on the wire): JSON, not
 * cached, `Retry-After` (whole seconds, at least 1) when the error has one,
 * and `x-should-retry: false` on a 409 (the model was stopped or disabled by
 * a user) and on an error marked `shouldRetry: false` (a model that failed
 * with no restart pending, which a person must fix; a model that does not
 * fit next to models that stay): no retry changes those,
 * and OpenAI's clients retry a 409 and a 503 unless told not to (openai-node
 * and openai-python read this header first). Retry-After still says when
 * looking again makes sense.
 */
export function errorHeaders(err: GatewayError): Record<string, string> {
  const h: Record<string, string> = { "Content-Type": "application/json", "Cache-Control": "no-store" };
  if (err.options.retryAfterS !== undefined) h["Retry-After"] = String(Math.max(1, Math.ceil(err.options.retryAfterS)));
  if (err.status === 409 || err.options.shouldRetry === false) h["x-should-retry"] = "false";
  return h;
}

/** Writes `err` to `res` unless headers already went out (then the connection is ended: a half-sent answer cannot turn into an error). */
export function sendError(res: ServerResponse, err: GatewayError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(err);
  res.writeHead(err.status, { ...errorHeaders(err), "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

/** Writes a JSON answer the gateway makes itself (/v1/models). */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}
