/**
 * tRPC's one initialisation: the context (built from the request's headers),
 * the error formatter, and the procedure builders every router uses.
 *
 * Errors: services throw ServiceError; `serviceErrors` turns it into a
 * TRPCError with the matching code, and the formatter puts field issues
 * (from zod input validation or from the service) in `data.issues`, so the
 * dashboard can show each message beside its input.
 */
import { initTRPC, TRPCError } from "@trpc/server";
import { ZodError } from "zod";
import { getRuntime, type AppRuntime } from "~/server/runtime";
import { issuesFromZod, ServiceError, type FieldIssue } from "~/server/services/errors";
import { formatIssues } from "synapse-host-agent/error-text";

export interface ApiContext {
  headers: Headers;
  /** The process's services (database, links, fleet, events). Tests hand in their own. */
  runtime: AppRuntime;
}

/** The context without a request: what tests pass to `createCaller`. */
export function createContextInner(opts: { runtime: AppRuntime; headers?: Headers }): ApiContext {
  return { runtime: opts.runtime, headers: opts.headers ?? new Headers() };
}

export async function createTRPCContext(opts: { headers: Headers }): Promise<ApiContext> {
  return createContextInner({ runtime: await getRuntime(), headers: opts.headers });
}

const SERVICE_TO_TRPC = {
  BAD_REQUEST: "BAD_REQUEST",
  NOT_FOUND: "NOT_FOUND",
  CONFLICT: "CONFLICT",
  UNAVAILABLE: "SERVICE_UNAVAILABLE",
  FAILED: "BAD_GATEWAY",
  INTERNAL: "INTERNAL_SERVER_ERROR",
} as const satisfies Record<ServiceError["code"], TRPCError["code"]>;

function issuesOf(cause: unknown): FieldIssue[] | null {
  if (cause instanceof ZodError) return issuesFromZod(cause);
  if (cause instanceof ServiceError && cause.issues) return cause.issues;
  return null;
}

const t = initTRPC.context<ApiContext>().create({
  errorFormatter({ shape, error }) {
    const issues = issuesOf(error.cause);
    const message = error.cause instanceof ZodError && issues ? formatIssues(issues) : shape.message;
    return {
      ...shape,
      message,
      data: {
        ...shape.data,
        // Stack traces stay on the server.
        stack: undefined,
        issues,
        serviceCode: error.cause instanceof ServiceError ? error.cause.code : null,
      },
    };
  },
});

/** ServiceError → TRPCError with the same message, issues and cause. */
const serviceErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof ServiceError) {
    const cause = result.error.cause;
    throw new TRPCError({ code: SERVICE_TO_TRPC[cause.code], message: cause.message, cause });
  }
  return result;
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(serviceErrors);
