/**
 * The model page's live estimate: the saved model with the form's unsaved runtime values over it
 * (context size, parallel slots, batch sizes, flash attention, load mode, cache types among the extra
 * flags), estimated as its llama-server would run with them. Nothing is saved.
 */
import type { Model } from "~/generated/prisma/client";
import type { Db } from "~/server/db/client";
import { ServiceError } from "../errors";
import type { ModelEstimateInput } from "../registry/schemas";
import type { MemoryEstimate } from "./estimate-types";
import { hasEstimate, type Estimate } from "./plan";

export interface FormEstimate {
  /** Null: no estimate (`unavailable` says why). */
  estimate: MemoryEstimate | null;
  unavailable: string | null;
}

/** `input`: parsed by modelEstimateInput. `estimate`: the fleet's estimator under the global defaults. NOT_FOUND for an unknown model. */
export async function estimateFromForm(db: Db, input: ModelEstimateInput, estimate: (model: Model) => Promise<Estimate>): Promise<FormEstimate> {
  const saved = await db.model.findUnique({ where: { id: input.id } });
  if (!saved) throw new ServiceError("NOT_FOUND", `no model with id ${input.id}`, { issues: [{ path: "id", message: `no model with id ${input.id}` }] });
  const { id: _id, extraFlags, ...fields } = input;
  const over = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Partial<Model>;
  const e = await estimate({ ...saved, ...over, ...(extraFlags !== undefined ? { extraFlags: JSON.stringify(extraFlags) } : {}) });
  return hasEstimate(e) ? { estimate: e, unavailable: null } : { estimate: null, unavailable: e.unavailable };
}
