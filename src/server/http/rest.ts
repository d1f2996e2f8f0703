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
import { TRPCError } from "@trpc/server";
import { limitRequestBody } from "./body-limit";

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

/** A REST mutation's body holds a few options; anything larger is refused (400) without reading it all. */
export const MAX_OPTIONS_BODY_BYTES = 64 * 1024;

/** The body as text, held to `limit` by the tRPC route's own limiter (body-limit.ts); past it a 400 with the limit. */
async function readBoundedText(req: Request, limit: number): Promise<string> {
  try {
    return await limitRequestBody(req, limit).text();
  } catch (err) {
    const cause = err instanceof TRPCError ? err : err instanceof Error && err.cause instanceof TRPCError ? err.cause : null;
    if (cause?.code === "PAYLOAD_TOO_LARGE") throw new ServiceError("BAD_REQUEST", cause.message);
    throw err;
  }
}

/**
 * A POST's options, from its query string and its JSON body, checked by one schema written for the query
 * (string values): a body is empty or a JSON object whose booleans and numbers are read as the query's
 * strings (`{"force": true}` is `?force=true`). Errors are 400s that change nothing: a body that is not a
 * JSON object, an option the schema does not know (with `.strict()`), one given in both places with
 * different values; a body over MAX_OPTIONS_BODY_BYTES (unread). Without it a body such as `{"force": true}` was
 * silently ignored.
 */
export async function readOptions<S extends z.ZodType>(req: Request, schema: S): Promise<z.output<S>> {
  // No prototype: a body option named `constructor` or `__proto__` is an unknown option like any other,
  // not a clash with Object.prototype's member of that name (nor a write to the prototype).
  const params: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, Object.fromEntries(new URL(req.url).searchParams));
  const text = (await readBoundedText(req, MAX_OPTIONS_BODY_BYTES)).trim();
  if (text !== "") {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new ServiceError("BAD_REQUEST", `the body is not JSON (${(err as Error).message}); send a JSON object of options, e.g. {"force": true}, or no body`);
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) throw new ServiceError("BAD_REQUEST", 'the body must be a JSON object of options, e.g. {"force": true}, or empty');
    for (const [key, value] of Object.entries(body)) {
      const text = typeof value === "string" ? value : typeof value === "boolean" || typeof value === "number" ? String(value) : null;
      if (text === null) throw new ServiceError("BAD_REQUEST", `option "${key}" must be a boolean, number or string, not ${value === null ? "null" : typeof value}`);
      if (Object.hasOwn(params, key) && params[key] !== text) throw new ServiceError("BAD_REQUEST", `option "${key}" is ${params[key]} in the query and ${text} in the body; give it once`);
      params[key] = text;
    }
  }
  const known = optionNames(schema);
  if (known) {
    const unknown = Object.keys(params).filter((k) => !known.includes(k));
    if (unknown.length > 0) {
      const takes = known.length > 0 ? `it takes ${known.join(", ")}` : "it takes no options";
      throw new ServiceError("BAD_REQUEST", `unknown option${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${k}"`).join(", ")}; ${takes}`);
    }
  }
  return schema.parse(params);
}

/** The option names of an object schema, also behind `.transform()` (zod 4: a pipe whose `in` is the object); null if not an object. */
function optionNames(schema: z.ZodType): string[] | null {
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  if (shape && typeof shape === "object") return Object.keys(shape);
  const inner = (schema as { _zod?: { def?: { in?: z.ZodType } } })._zod?.def?.in;
  return inner ? optionNames(inner) : null;
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
