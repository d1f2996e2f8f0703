/**
 * Eviction (issue 16): when an on-demand start does not fit, which running models to stop first. Only
 * on-demand models with no request in flight are candidates (never `always` models), least recently used
 * first (a model never used since the app started counts as the oldest). Nothing is chosen when even all
 * candidates together would not make room: a start that fails anyway must not cost others their servers.
 * Pure; sizes in bytes.
 */
import { chargedBytes, hasEstimate, type Estimate, type RunningModel } from "./plan";
import type { MemoryEstimate } from "./estimate-types";

export interface EvictionCandidate extends RunningModel {
  loadPolicy: string;
  /** Gateway requests held for it now. */
  inFlight: number;
  /** Epoch ms of its last request's start or end; null: none since the app started. */
  lastUsedAt: number | null;
}

/**
 * The models to stop so that `need` fits in `budgetBytes` next to `running` (which holds every model that
 * runs on the host); [] when it fits already; null when it cannot be made to fit by evicting.
 */
export function chooseEvictions(budgetBytes: number, running: readonly EvictionCandidate[], need: Estimate): EvictionCandidate[] | null {
  if (!hasEstimate(need)) return [];
  const used = running.reduce((s, r) => s + (hasEstimate(r.estimate) ? chargedBytes(r.estimate) : 0), 0);
  let short = chargedBytes(need) - (budgetBytes - used);
  if (short <= 0) return [];
  const evictable = running
    .filter((r) => r.loadPolicy === "on-demand" && r.inFlight === 0 && hasEstimate(r.estimate))
    .sort((a, b) => (a.lastUsedAt ?? -Infinity) - (b.lastUsedAt ?? -Infinity) || a.name.localeCompare(b.name));
  const chosen: EvictionCandidate[] = [];
  for (const r of evictable) {
    chosen.push(r);
    short -= chargedBytes(r.estimate as MemoryEstimate);
    if (short <= 0) return chosen;
  }
  return null;
}
