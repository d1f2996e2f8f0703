/**
 * Idle unload: an on-demand model that is ready and has had no request for
 * its idle time is stopped, with cause `idle`. A request or stream in flight
 * (queued, waiting or being answered) keeps it loaded; its clock starts at
 * the end of the last request served (ModelUsage.lastUsedAt: a refused
 * request does not move it; a request's being served clears the countdown
 * at once, InFlightRequest.served), or when the unloader first saw it ready
 * (a model started with its Start button, or re-adopted after an app
 * restart, with no request served since the app started). A model loaded
 * again after its last use (Start button, a restart after a crash, a start
 * whose requests all left before they were served) counts from when the
 * unloader last saw it not loaded, not from that older use.
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
  /**
   * modelId → the last time (this clock) the unloader saw the on-demand model not loaded, or finished
   * stopping it: a use before that was of an earlier load.
   */
  const seenUnloadedAt = new Map<string, number>();
  const stops = new Map<string, Promise<void>>();
  let closed = false;
  let sweeping: Promise<void> | null = null;

  async function sweepOnce(): Promise<void> {
    const models = await fleet.models();
    options.onModels?.(models);
    const t = now();
    const live = new Set<string>();
    const listed = new Set<string>();
    for (const m of models) {
      listed.add(m.id);
      // Unhealthy counts as loaded: a busy server answers /health late, and it still holds its memory.
      const loaded = m.state === "ready" || m.state === "unhealthy";
      // Not while a request is in flight: it may have been served on a load this list does not show yet.
      if (m.loadPolicy === "on-demand" && !loaded && !stops.has(m.id) && fleet.usage(m.id).inFlight === 0) seenUnloadedAt.set(m.id, t);
      // Not one already wanted stopped: its stop is recorded, to be made when its host can be reached again (a
      // trial's unloader, finding it still loaded by its last known state, stopped it again every idle time).
      if (m.loadPolicy !== "on-demand" || !loaded || stops.has(m.id) || m.desired === "stopped") {
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
      } else {
        // Loaded again since its last use (its Start button, a restart after a crash, a start whose requests
        // all left before they were served): the clock starts with this load, not at a use of an earlier one.
        // (Seen by this clock only: a host's clock, as in its readyAt, may differ from the app's.)
        const unloadedAt = seenUnloadedAt.get(m.id);
        if (unloadedAt !== undefined && unloadedAt > since) since = unloadedAt;
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
          seenUnloadedAt.set(m.id, now());
          fleet.setIdleUnloadAt(m.id, null);
        });
      stops.set(m.id, stop);
    }
    for (const id of seenIdleSince.keys()) if (!live.has(id)) seenIdleSince.delete(id);
    for (const id of seenUnloadedAt.keys()) if (!listed.has(id)) seenUnloadedAt.delete(id);
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
