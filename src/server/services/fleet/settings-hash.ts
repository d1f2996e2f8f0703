/**
 * What a start was given, as one short string: the hash of the spec a model's
 * saved settings make (the host agent's specHash, the one it compares a
 * running server's spec with), or, when they make no valid spec, a hash of
 * the error that says why. A failed model's row keeps the hash of the start
 * that failed (ServerState.failedSpecHash); a saved change that makes another
 * hash lets an on-demand model's next request start it again (gateway
 * readiness.ts), and a model whose settings did not change stays failed.
 */
import { createHash } from "node:crypto";
import { errorMessage } from "synapse-host-agent/error-text";
import { specHash } from "synapse-host-agent/supervisor";
import { resolveSpec, serverApiKeyOf, type SpecHost, type SpecModel, type SpecSettings } from "~/server/services/registry/spec";
import type { Model } from "~/generated/prisma/client";

/** The spec hash (16 hex digits), or "invalid:" and 16 hex digits of the error that made no spec. */
export function settingsHash(model: SpecModel & Pick<Model, "serverApiKey" | "serverApiKeyOff">, host: SpecHost, settings: SpecSettings): string {
  try {
    return specHash(resolveSpec(model, host, settings, { apiKey: serverApiKeyOf(model) }));
  } catch (err) {
    return invalidSettingsHash(err);
  }
}

/** settingsHash of settings that made no spec, from the error resolveSpec threw (a start that resolved it already). */
export function invalidSettingsHash(err: unknown): string {
  return `invalid:${createHash("sha256").update(errorMessage(err)).digest("hex").slice(0, 16)}`;
}

/**
 * A failed model whose saved settings changed since the start that failed: its row records a failed start's
 * hash, and the settings now make another. False for a model not failed, or failed with no hash recorded
 * (before the column, or a failure this app did not start): a person starts it.
 */
export function changedSinceFailure(
  row: SpecModel & Pick<Model, "serverApiKey" | "serverApiKeyOff"> & { host: SpecHost; server: { observed: string; failedSpecHash: string | null } | null },
  settings: SpecSettings,
): boolean {
  const failedWith = row.server?.observed === "failed" ? row.server.failedSpecHash : null;
  return failedWith !== null && settingsHash(row, row.host, settings) !== failedWith;
}
