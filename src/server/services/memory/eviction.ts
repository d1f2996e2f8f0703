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

/** A model that holds memory on the host, and whether it may stop without a person asking (see mayFitLater). */
export interface HeldMemory extends RunningModel {
  /**
   * It may go by itself: an on-demand model (its idle unload, or an eviction once its requests end), one
   * stopping, or one whose start is in flight (a start can fail). False: it stays until a person stops it
   * (an `always` model that runs).
   */
  mayGo: boolean;
}

/**
 * Whether a model refused for memory could fit later without anyone acting: `need` next to only the models
 * that stay (those that may not go by themselves) fits in `budgetBytes`. False: waiting cannot help (only a
 * person can make room: stop a model, raise the budget, shrink this one), so a client should not retry.
 * Models without an estimate are not charged, as the plan does not charge them.
 */
export function mayFitLater(budgetBytes: number, held: readonly HeldMemory[], need: Estimate): boolean {
  if (!hasEstimate(need)) return true;
  const staying = held.reduce((s, r) => s + (!r.mayGo && hasEstimate(r.estimate) ? chargedBytes(r.estimate) : 0), 0);
  return chargedBytes(need) <= budgetBytes - staying;
}
