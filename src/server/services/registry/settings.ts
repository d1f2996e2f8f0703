/** Global runtime defaults: one row, id 1, created with the schema's defaults on first read. */
import type { Prisma, RuntimeSettings } from "~/generated/prisma/client";
import type { Db } from "~/server/db/client";
import { parseInput } from "./input";
import { settingsUpdateInput, type SettingsUpdateInput } from "./schemas";
import { writeTransaction, type Tx } from "./tx";

export const SETTINGS_ID = 1;

export type SettingsView = RuntimeSettings;

/** Reads the row inside a write transaction, creating it when missing. */
export async function settingsIn(tx: Tx): Promise<SettingsView> {
  const row = await tx.runtimeSettings.findUnique({ where: { id: SETTINGS_ID } });
  return row ?? tx.runtimeSettings.create({ data: { id: SETTINGS_ID } });
}

export async function getSettings(db: Db): Promise<SettingsView> {
  const row = await db.runtimeSettings.findUnique({ where: { id: SETTINGS_ID } });
  return row ?? writeTransaction(db, settingsIn);
}

/** Applies the given fields; unchanged values write nothing (updatedAt stays). */
export async function updateSettings(db: Db, input: SettingsUpdateInput): Promise<SettingsView> {
  const patch = parseInput(settingsUpdateInput, input);
  return writeTransaction(db, async (tx) => (await applySettingsPatch(tx, patch)).settings);
}

/** Writes the fields that differ from the row; `changed` says whether anything was written. */
export async function applySettingsPatch(tx: Tx, patch: Prisma.RuntimeSettingsUpdateInput): Promise<{ settings: SettingsView; changed: boolean }> {
  const current = await settingsIn(tx);
  const changed = Object.fromEntries(Object.entries(patch).filter(([k, v]) => v !== undefined && current[k as keyof SettingsView] !== v));
  if (Object.keys(changed).length === 0) return { settings: current, changed: false };
  return { settings: await tx.runtimeSettings.update({ where: { id: SETTINGS_ID }, data: changed }), changed: true };
}
