/** Input validation at the service boundary: zod issues become a BAD_REQUEST naming each field. */
import type { z } from "zod";
import { issuesFromZod, ServiceError } from "../errors";

export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw ServiceError.invalid(issuesFromZod(r.error));
  return r.data;
}
