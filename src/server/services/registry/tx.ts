/**
 * The registry's one writer path. With the better-sqlite3 adapter the client
 * has a single connection and serializes interactive transactions with a
 * mutex, so checks and writes inside one transaction see no interleaving from
 * this process. Another process (the import CLI beside the app) is kept out
 * by taking SQLite's write lock first: a deferred BEGIN that reads before it
 * writes would fail with SQLITE_BUSY instead of waiting for the busy timeout.
 */
import type { Db } from "~/server/db/client";
import { ServiceError, type FieldIssue } from "../errors";
import { errorMessage, formatIssues } from "synapse-host-agent/error-text";

export type Tx = Parameters<Parameters<Db["$transaction"]>[0]>[0];
export type DbOrTx = Db | Tx;

/** Long enough for a queue of writers on a slow disk; each holds the lock for milliseconds. */
const TX_OPTIONS = { maxWait: 30_000, timeout: 30_000 } as const;

export async function writeTransaction<T>(db: Db, work: (tx: Tx) => Promise<T>, conflict?: (fields: string[]) => FieldIssue[]): Promise<T> {
  try {
    return await db.$transaction(async (tx) => {
      // A write statement (matching no rows) takes the RESERVED lock before any read.
      await tx.$executeRawUnsafe(`UPDATE "RuntimeSettings" SET "id" = "id" WHERE 0`);
      return work(tx);
    }, TX_OPTIONS);
  } catch (err) {
    throw asServiceError(err, conflict);
  }
}

interface PrismaKnownError {
  code: string;
  meta?: { target?: unknown; driverAdapterError?: { cause?: { constraint?: { fields?: unknown } } } };
}

function isPrismaKnown(err: unknown): err is PrismaKnownError {
  return typeof err === "object" && err !== null && typeof (err as { code?: unknown }).code === "string" && /^P\d{4}$/.test((err as { code: string }).code);
}

/** Columns of a unique-constraint violation (P2002), however the engine reports them. */
export function uniqueViolationFields(err: unknown): string[] | null {
  if (!isPrismaKnown(err) || err.code !== "P2002") return null;
  const fromAdapter = err.meta?.driverAdapterError?.cause?.constraint?.fields;
  const target = Array.isArray(fromAdapter) ? fromAdapter : err.meta?.target;
  return Array.isArray(target) ? target.map(String) : typeof target === "string" ? [target] : [];
}

function defaultConflictIssues(fields: string[]): FieldIssue[] {
  const field = fields.includes("port") ? "port" : fields.includes("name") ? "name" : (fields[0] ?? "");
  const message = field === "port" ? "is already used by another model on this host; choose a free port" : field === "name" ? "is already taken; choose another name" : "conflicts with an existing entry";
  return [{ path: field, message }];
}

/** ServiceErrors pass through; a unique violation becomes CONFLICT naming the field; the rest INTERNAL. */
export function asServiceError(err: unknown, conflict?: (fields: string[]) => FieldIssue[]): ServiceError {
  if (err instanceof ServiceError) return err;
  const fields = uniqueViolationFields(err);
  if (fields) {
    const issues = (conflict ?? defaultConflictIssues)(fields);
    return new ServiceError("CONFLICT", formatIssues(issues), { issues, cause: err });
  }
  return new ServiceError("INTERNAL", `registry write failed: ${errorMessage(err)}`, { cause: err });
}
