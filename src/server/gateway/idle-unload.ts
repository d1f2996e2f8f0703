/**
 * Idle unload: an on-demand model that is ready and has had no request for
 * its idle time is stopped, with cause `idle`. A request or stream in flight
 * (queued, waiting or being answered) keeps it loaded; its clock starts at
 * the end of the last request served (ModelUsage.lastUsedAt: a refused
 * request does not move it; a request's being served clears the countdown
 * at once, GatewayFleet.beginRequest), or when the unloader first saw it ready (a
 * model started with its Start button, or re-adopted after an app restart).
 *
 * A sweep runs every `sweepMs`, and when a model's idle timer (on its
 * ServerEntry, armed at its deadline) fires. The decision and the mark
 * "unloading" happen in one tick with the in-flight check, so a request that
 * arrives after it sees the mark and waits for the stop, then starts the
 * model again (gateway.ts), rather than meeting a server that is going away.
 */
import type { GatewayFleet, GatewayModel } from "./fleet-port";

export interface IdleUnloader {
  /** The stop in progress for this model, if the unloader is stopping it. */
  unloading(modelId: string): Promise<void> | undefined;
  /** A request to an on-demand model ended, served or not: a sweep soon (coalesced with one running) sets its deadline. */
  ended(): void;
  /** One sweep now (tests; the timer calls it too). */
  sweep(): Promise<void>;
  close(): void;
}

export interface IdleUnloaderOptions {
  fleet: GatewayFleet;
  sweepMs?: number;
  now?: () => number;
  onError?: (msg: string, data: Record<string, unknown>) => void;
  /** Given the model list each sweep reads (the gateway's queue figures follow the registry with it). */
  onModels?: (models: readonly GatewayModel[]) => void;
}

export function createIdleUnloader(options: IdleUnloaderOptions): IdleUnloader {
  const { fleet } = options;
  const now = options.now ?? Date.now;
  const sweepMs = options.sweepMs ?? 1000;
  /** modelId → when the unloader first saw it ready and idle, for models with no request yet. */
  const seenIdleSince = new Map<string, number>();
  const stops = new Map<string, Promise<void>>();
  let closed = false;
  let sweeping: Promise<void> | null = null;

  async function sweepOnce(): Promise<void> {
    const models = await fleet.models();
    options.onModels?.(models);
    const t = now();
    const live = new Set<string>();
    for (const m of models) {
      // Unhealthy counts as loaded: a busy server answers /health late, and it still holds its memory.
      if (m.loadPolicy !== "on-demand" || (m.state !== "ready" && m.state !== "unhealthy") || stops.has(m.id)) {
        if (!stops.has(m.id)) fleet.setIdleUnloadAt(m.id, null);
        continue;
      }
      live.add(m.id);
      const u = fleet.usage(m.id);
      if (u.inFlight > 0) {
        fleet.setIdleUnloadAt(m.id, null);
        continue;
      }
      let since = u.lastUsedAt;
      if (since === null) {
        since = seenIdleSince.get(m.id) ?? t;
        seenIdleSince.set(m.id, since);
      }
      const due = since + m.idleMs;
      fleet.setIdleUnloadAt(m.id, due, kick);
      if (t < due) continue;
      // Same tick as the in-flight check: nothing can begin in between.
      const stop = fleet
        .stop(m.id, "idle")
        .catch((err: unknown) => options.onError?.("idle unload failed", { model: m.name, error: err instanceof Error ? err.message : String(err) }))
        .finally(() => {
          stops.delete(m.id);
          seenIdleSince.delete(m.id);
          fleet.setIdleUnloadAt(m.id, null);
        });
      stops.set(m.id, stop);
    }
    for (const id of seenIdleSince.keys()) if (!live.has(id)) seenIdleSince.delete(id);
  }

  let again = false;
  /** A sweep now, or right after the one running (a model's idle timer may fire during one). */
  function kick(): void {
    if (closed) return;
    if (sweeping) {
      again = true;
      return;
    }
    sweeping = sweepOnce()
      .catch((err: unknown) => options.onError?.("idle sweep failed", { error: err instanceof Error ? err.message : String(err) }))
      .finally(() => {
        sweeping = null;
        if (again) {
          again = false;
          kick();
        }
      });
  }

  const timer = setInterval(() => {
    if (!sweeping) kick();
  }, sweepMs);
  timer.unref();

  return {
    unloading(modelId) {
      return stops.get(modelId);
    },
    ended: kick,
    sweep() {
      return sweepOnce();
    },
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
}
