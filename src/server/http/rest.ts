/**
 * Shared plumbing for the REST routes (the seed's /api/models/servers/*):
 * a JSON error body `{ error: { code, message, issues? } }` with the HTTP
 * status that matches the service error, and structured logging of failures.
 * Auth, Host, Origin and content type were already checked by src/proxy.ts.
 */
import { ZodError, type z } from "zod";
import { createLogger, errorFields } from "~/server/log/logger";
import { issuesFromZod, ServiceError, type ServiceErrorCode } from "~/server/services/errors";
import { formatIssues } from "synapse-host-agent/error-text";

const log = createLogger("rest");

const STATUS: Record<ServiceErrorCode, number> = {
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNAVAILABLE: 503,
  FAILED: 502,
  INTERNAL: 500,
};

export function errorResponse(err: unknown): Response {
  if (err instanceof ZodError) {
    const issues = issuesFromZod(err);
    return Response.json({ error: { code: "BAD_REQUEST", message: formatIssues(issues), issues } }, { status: 400 });
  }
  if (err instanceof ServiceError) {
    return Response.json({ error: { code: err.code, message: err.message, ...(err.issues ? { issues: err.issues } : {}) } }, { status: STATUS[err.code] });
  }
  log.error("request failed", errorFields(err));
  return Response.json({ error: { code: "INTERNAL", message: "internal error; see the app's log" } }, { status: 500 });
}

/** Parses the URL's query parameters with a schema (400 naming the parameter on failure). */
export function parseQuery<S extends z.ZodType>(req: Request, schema: S): z.output<S> {
  const params = Object.fromEntries(new URL(req.url).searchParams);
  return schema.parse(params);
}

/**
 * Wraps a handler: JSON result on success, mapped error otherwise; never
 * cached. `Server-Timing: handler;dur=…` tells a client how much of a slow
 * answer was the work itself and how much the way to it.
 */
export function jsonRoute(handler: (req: Request) => Promise<{ status?: number; body: unknown }>): (req: Request) => Promise<Response> {
  return async (req) => {
    const t0 = performance.now();
    try {
      const { status = 200, body } = await handler(req);
      return Response.json(body, { status, headers: { "cache-control": "no-store", "server-timing": `handler;dur=${(performance.now() - t0).toFixed(1)}` } });
    } catch (err) {
      return errorResponse(err);
    }
  };
}
