/**
 * Gateway API keys: the form of a key and how it is stored. A key is
 * `sk-synapse-` + 32 random bytes (base64url); only its SHA-256 is stored
 * (a fast hash suffices for 256 random bits: there is nothing to guess).
 * Shared by the dashboard's service (which creates keys) and the gateway
 * (which checks them); node:crypto only.
 */
import { createHash, randomBytes } from "node:crypto";

export const API_KEY_PREFIX = "sk-synapse-";

/** A new key, its hash and the prefix shown in lists. */
export function newApiKey(): { key: string; hash: string; prefix: string } {
  const key = `${API_KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
  return { key, hash: hashApiKey(key), prefix: key.slice(0, API_KEY_PREFIX.length + 6) };
}

/** Hex SHA-256 of a key as sent. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/**
 * A key's model list as stored (`GatewayKey.models`, a JSON array of model names; empty: every model).
 * Anything that is not such an array reads as empty; one reader, so the dashboard shows what the gateway grants.
 */
export function parseKeyModels(stored: string): string[] {
  try {
    const v = JSON.parse(stored) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/**
 * The `data` of the event (an "action" Event row, services/fleet/events.ts) the
 * registry's services write when keys change: created, deleted, or a model
 * they name renamed. The gateway drops what it cached of keys when it sees
 * one (fleet-host.ts), so a deleted key is refused from the next request on.
 */
export interface GatewayKeyEventData {
  gatewayKey: { ids: string[]; change: "created" | "deleted" | "model renamed" };
}

/** Whether an event's `data` says gateway keys changed. */
export function isGatewayKeyEvent(data: unknown): data is GatewayKeyEventData {
  return typeof data === "object" && data !== null && "gatewayKey" in data;
}

/** The bearer token of an Authorization header, or null. */
export function bearerOf(header: string | string[] | undefined): string | null {
  const h = Array.isArray(header) ? header[0] : header;
  if (!h || !/^bearer\s+/i.test(h)) return null;
  const token = h.replace(/^bearer\s+/i, "").trim();
  return token === "" ? null : token;
}
