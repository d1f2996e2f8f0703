/**
 * Gateway API keys as the dashboard manages them: create (the key is in the
 * answer once and never again), list (name, prefix, models, last use),
 * delete. Keys may be limited to some models, by registry name.
 */
import { z } from "zod";
import type { Db } from "~/server/db/client";
import { newApiKey, parseKeyModels } from "~/server/gateway/api-key";
import { ServiceError } from "../errors";
import { parseInput } from "./input";
import { modelNameSchema } from "./schemas";

export const gatewayKeyCreateInput = z
  .object({
    name: z.string({ error: "is required" }).trim().min(1, "must not be empty").max(64, "must be at most 64 characters"),
    /** Registry names; empty or omitted: every model. */
    models: z.array(modelNameSchema).max(512, "at most 512 models").default([]),
  })
  .strict();
export const gatewayKeyIdInput = z.object({ id: z.string().min(1).max(64) }).strict();

export interface GatewayKeyView {
  id: string;
  name: string;
  prefix: string;
  /** Model names; empty: every model. */
  models: string[];
  createdAt: Date;
  lastUsedAt: Date | null;
}

function view(row: { id: string; name: string; prefix: string; models: string; createdAt: Date; lastUsedAt: Date | null }): GatewayKeyView {
  return { id: row.id, name: row.name, prefix: row.prefix, models: parseKeyModels(row.models), createdAt: row.createdAt, lastUsedAt: row.lastUsedAt };
}

/** Creates a key; the answer's `key` is the only time it is shown. Unknown model names: BAD_REQUEST naming them. */
export async function createGatewayKey(db: Db, input: z.input<typeof gatewayKeyCreateInput>): Promise<GatewayKeyView & { key: string }> {
  const { name, models } = parseInput(gatewayKeyCreateInput, input);
  const unique = [...new Set(models)];
  if (unique.length > 0) {
    const known = new Set((await db.model.findMany({ where: { name: { in: unique } }, select: { name: true } })).map((m) => m.name));
    const missing = unique.filter((m) => !known.has(m));
    if (missing.length > 0) throw ServiceError.invalid([{ path: "models", message: `no model named ${missing.join(", ")}` }]);
  }
  const { key, hash, prefix } = newApiKey();
  const row = await db.gatewayKey.create({ data: { name, keyHash: hash, prefix, models: JSON.stringify(unique) } });
  return { ...view(row), key };
}

export async function listGatewayKeys(db: Db): Promise<GatewayKeyView[]> {
  const rows = await db.gatewayKey.findMany({ orderBy: { createdAt: "asc" } });
  return rows.map(view);
}

export async function deleteGatewayKey(db: Db, input: z.input<typeof gatewayKeyIdInput>): Promise<{ id: string }> {
  const { id } = parseInput(gatewayKeyIdInput, input);
  const r = await db.gatewayKey.deleteMany({ where: { id } });
  if (r.count === 0) throw new ServiceError("NOT_FOUND", `no gateway key with id ${id}`);
  return { id };
}
