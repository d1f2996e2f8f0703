/**
 * Gateway API keys as the dashboard manages them: create (the key is in the
 * answer once and never again), list (name, prefix, models, last use),
 * delete. Keys may be limited to some models, by registry name. Creating
 * and deleting a key are recorded as "action" events (api-key.ts's
 * GatewayKeyEventData): the event log shows who could call the gateway
 * when, and the gateway drops its cached keys when it sees one, so a
 * deleted key is refused from the next request on.
 */
import { z } from "zod";
import type { Db } from "~/server/db/client";
import { newApiKey, parseKeyModels, type GatewayKeyEventData } from "~/server/gateway/api-key";
import type { EventBus } from "../fleet/events";
import type { Tx } from "./tx";
import { ServiceError } from "../errors";
import { parseInput } from "./input";

export const gatewayKeyCreateInput = z
  .object({
    name: z.string({ error: "is required" }).trim().min(1, "must not be empty").max(64, "must be at most 64 characters"),
    /** Registry names or aliases (stored as registry names); empty or omitted: every model. */
    models: z
      .array(z.string().trim().min(1, "must not be empty").max(128, "must be at most 128 characters").regex(/^[^\0\n\r]*$/, "must be one line"))
      .max(512, "at most 512 models")
      .default([]),
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

/** Where key changes are recorded (the app's event bus). */
type KeyEvents = Pick<EventBus, "append">;

/** Records a key's change; a failed write is logged by the bus and does not undo the change (caches still expire: key-store.ts). */
async function recordKeyChange(events: KeyEvents | undefined, row: { id: string; name: string; prefix: string }, change: "created" | "deleted", models: string[]): Promise<void> {
  if (!events) return;
  const data: GatewayKeyEventData & { name: string; prefix: string; models: string[] } = { gatewayKey: { ids: [row.id], change }, name: row.name, prefix: row.prefix, models };
  const scope = models.length > 0 ? `models ${models.join(", ")}` : "every model";
  await events.append({ kind: "action", message: `gateway key "${row.name}" (${row.prefix}…) ${change}${change === "created" ? `, for ${scope}` : ""}`, data }).catch(() => undefined);
}

/**
 * Creates a key; the answer's `key` is the only time it is shown. Unknown
 * model names: BAD_REQUEST naming them. With `events`, the creation is
 * recorded (an "action" event).
 */
export async function createGatewayKey(db: Db, input: z.input<typeof gatewayKeyCreateInput>, events?: KeyEvents): Promise<GatewayKeyView & { key: string }> {
  const { name, models } = parseInput(gatewayKeyCreateInput, input);
  // Named by registry name or alias (as requests name them); stored as registry names.
  const asked = [...new Set(models)];
  let unique: string[] = [];
  if (asked.length > 0) {
    const rows = await db.model.findMany({ where: { OR: [{ name: { in: asked } }, { alias: { in: asked } }] }, select: { name: true, alias: true } });
    const nameOf = (m: string) => rows.find((r) => r.name === m)?.name ?? rows.find((r) => r.alias === m)?.name;
    const missing = asked.filter((m) => nameOf(m) === undefined);
    if (missing.length > 0) throw ServiceError.invalid([{ path: "models", message: `no model named ${missing.join(", ")} (by registry name or alias)` }]);
    unique = [...new Set(asked.map((m) => nameOf(m)!))];
  }
  const { key, hash, prefix } = newApiKey();
  const row = await db.gatewayKey.create({ data: { name, keyHash: hash, prefix, models: JSON.stringify(unique) } });
  await recordKeyChange(events, row, "created", unique);
  return { ...view(row), key };
}

export async function listGatewayKeys(db: Db): Promise<GatewayKeyView[]> {
  const rows = await db.gatewayKey.findMany({ orderBy: { createdAt: "asc" } });
  return rows.map(view);
}

/**
 * Deletes a key and records it on `events`; the gateway refuses the key
 * from its next request on (it drops its cached keys at the event).
 * Unknown id: NOT_FOUND.
 */
export async function deleteGatewayKey(db: Db, input: z.input<typeof gatewayKeyIdInput>, events: KeyEvents): Promise<{ id: string }> {
  const { id } = parseInput(gatewayKeyIdInput, input);
  const row = await db.gatewayKey.findUnique({ where: { id }, select: { id: true, name: true, prefix: true, models: true } });
  const r = await db.gatewayKey.deleteMany({ where: { id } });
  if (!row || r.count === 0) throw new ServiceError("NOT_FOUND", `no gateway key with id ${id}`);
  await recordKeyChange(events, row, "deleted", parseKeyModels(row.models));
  return { id };
}

/**
 * A model renamed: every key limited to it by its old name now names the
 * new one (in the rename's transaction), so its permission follows the
 * model and does not pass to another model that takes the old name later.
 * Returns the keys changed (id and name).
 */
export async function renameModelInKeys(tx: Tx, from: string, to: string): Promise<{ id: string; name: string }[]> {
  const changed: { id: string; name: string }[] = [];
  for (const k of await tx.gatewayKey.findMany({ select: { id: true, name: true, models: true } })) {
    const models = parseKeyModels(k.models);
    if (!models.includes(from)) continue;
    await tx.gatewayKey.update({ where: { id: k.id }, data: { models: JSON.stringify(models.map((m) => (m === from ? to : m))) } });
    changed.push({ id: k.id, name: k.name });
  }
  return changed;
}

/** The key part of a rename's event (models.ts): the keys it changed, which the gateway's caches drop at the event (isGatewayKeyEvent). */
export function keysRenamedData(keys: { id: string }[]): GatewayKeyEventData {
  return { gatewayKey: { ids: keys.map((k) => k.id), change: "model renamed" } };
}
