/**
 * Per-model request counters of the gateway: requests in flight (queued,
 * waiting for a start, or being answered), the last time one ran, and when
 * the idle unloader will stop the model if nothing comes. Kept on the app's
 * runtime (runtime.ts) so the dashboard's status (servers.status) and the
 * gateway (in front of Next) share one table. Plain data, no imports: it
 * belongs on the fleet's per-model entry once there is one.
 */
export interface UsageEntry {
  inFlight: number;
  /** Epoch ms of the last request's start or end; null: none since the app started. */
  lastUsedAt: number | null;
  /** Epoch ms at which the idle unloader stops the model; null: not counting down. */
  idleUnloadAt: number | null;
}

export interface UsageTable {
  /** Counts a request in flight; the returned function ends it (idempotent). */
  begin(modelId: string, now: number): (now: number) => void;
  get(modelId: string): UsageEntry;
  setIdleUnloadAt(modelId: string, at: number | null): void;
}

export function createUsageTable(): UsageTable {
  const rows = new Map<string, UsageEntry>();
  const row = (id: string): UsageEntry => {
    let r = rows.get(id);
    if (!r) rows.set(id, (r = { inFlight: 0, lastUsedAt: null, idleUnloadAt: null }));
    return r;
  };
  return {
    begin(modelId, now) {
      const r = row(modelId);
      r.inFlight++;
      r.lastUsedAt = now;
      r.idleUnloadAt = null;
      let ended = false;
      return (at) => {
        if (ended) return;
        ended = true;
        r.inFlight--;
        r.lastUsedAt = at;
      };
    },
    get(modelId) {
      return { ...row(modelId) };
    },
    setIdleUnloadAt(modelId, at) {
      row(modelId).idleUnloadAt = at;
    },
  };
}
