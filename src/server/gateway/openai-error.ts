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
    readonly options: { retryAfterS?: number; param?: string | null } = {},
  ) {
    super(message);
    this.name = "GatewayError";
  }
}

export function errorBody(err: GatewayError): string {
  return JSON.stringify({ error: { message: err.message, type: err.type, param: err.options.param ?? null, code: err.code } });
}

/** Writes `err` to `res` unless headers already went out (then the connection is ended: a half-sent answer cannot turn into an error). */
export function sendError(res: ServerResponse, err: GatewayError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(err);
  const headers: Record<string, string | number> = { "content-type": "application/json", "content-length": Buffer.byteLength(body), "cache-control": "no-store" };
  if (err.options.retryAfterS !== undefined) headers["retry-after"] = Math.max(1, Math.ceil(err.options.retryAfterS));
  res.writeHead(err.status, headers);
  res.end(body);
}

/** Writes a JSON answer the gateway makes itself (/v1/models). */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}
