/**
 * Looks gateway API keys up by hash in the registry (GatewayKey rows),
 * caching answers for `ttlMs` so a request costs no query. `forget()`
 * drops the cache (the app calls it when a key is created or deleted:
 * fleet-host.ts), so a deleted key is refused from the next lookup on; the
 * time limit bounds what an edit nothing announced (the database changed
 * by hand) can leave. Stamps a key's last use at most once a minute.
 */
import type { Db } from "~/server/db/client";
import { parseKeyModels } from "./api-key";

export interface KeyGrant {
  id: string;
  name: string;
  /** Model names the key may use; empty: every model. */
  models: readonly string[];
}

export interface KeyStore {
  lookup(hash: string): Promise<KeyGrant | null>;
  /** Drops every cached answer; a lookup in progress keeps its answer out of the cache. */
  forget(): void;
}

/** Most answers a grant cache keeps (past it, it starts again empty). */
const MAX_CACHED = 10_000;

/**
 * Key answers (a grant, or null for an unknown key) by key hash, each kept
 * `ttlMs`; `forget()` drops them all, and an answer read before a forget()
 * is returned to its own lookup but not kept. Shared by the key store and
 * the worker's copy of it (remote-fleet.ts).
 */
export function createGrantCache(ttlMs: number, now: () => number = Date.now) {
  const cache = new Map<string, { at: number; grant: KeyGrant | null }>();
  let generation = 0;
  return {
    async lookup(hash: string, read: () => Promise<KeyGrant | null>): Promise<KeyGrant | null> {
      const hit = cache.get(hash);
      if (hit && now() - hit.at < ttlMs) return hit.grant;
      const asked = generation;
      const grant = await read();
      if (asked === generation) {
        if (cache.size > MAX_CACHED) cache.clear();
        cache.set(hash, { at: now(), grant });
      }
      return grant;
    },
    forget(): void {
      generation++;
      cache.clear();
    },
  };
}

export function createKeyStore(db: Db, options: { ttlMs?: number; now?: () => number } = {}): KeyStore {
  const now = options.now ?? Date.now;
  const cache = createGrantCache(options.ttlMs ?? 2000, now);
  const stamped = new Map<string, number>();
  const read = async (hash: string): Promise<KeyGrant | null> => {
    const row = await db.gatewayKey.findUnique({ where: { keyHash: hash }, select: { id: true, name: true, models: true } });
    return row ? { id: row.id, name: row.name, models: parseKeyModels(row.models) } : null;
  };
  return {
    async lookup(hash) {
      return stamp(await cache.lookup(hash, () => read(hash)));
    },
    forget: cache.forget,
  };

  function stamp(grant: KeyGrant | null): KeyGrant | null {
    if (grant && now() - (stamped.get(grant.id) ?? 0) > 60_000) {
      stamped.set(grant.id, now());
      void db.gatewayKey.updateMany({ where: { id: grant.id }, data: { lastUsedAt: new Date(now()) } }).catch(() => undefined);
    }
    return grant;
  }
}
