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

export function createKeyStore(db: Db, options: { ttlMs?: number; now?: () => number } = {}): KeyStore {
  const ttlMs = options.ttlMs ?? 2000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { at: number; grant: KeyGrant | null }>();
  const stamped = new Map<string, number>();
  // Bumped by forget(): an answer read before it is not cached after it.
  let generation = 0;
  return {
    async lookup(hash) {
      const hit = cache.get(hash);
      if (hit && now() - hit.at < ttlMs) return stamp(hit.grant);
      const asked = generation;
      const row = await db.gatewayKey.findUnique({ where: { keyHash: hash }, select: { id: true, name: true, models: true } });
      let grant: KeyGrant | null = null;
      if (row) grant = { id: row.id, name: row.name, models: parseKeyModels(row.models) };
      if (asked === generation) {
        if (cache.size > 10_000) cache.clear();
        cache.set(hash, { at: now(), grant });
      }
      return stamp(grant);
    },
    forget() {
      generation++;
      cache.clear();
    },
  };

  function stamp(grant: KeyGrant | null): KeyGrant | null {
    if (grant && now() - (stamped.get(grant.id) ?? 0) > 60_000) {
      stamped.set(grant.id, now());
      void db.gatewayKey.updateMany({ where: { id: grant.id }, data: { lastUsedAt: new Date(now()) } }).catch(() => undefined);
    }
    return grant;
  }
}
