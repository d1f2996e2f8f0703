/**
 * Which models are loading, since when, how far their log says they are,
 * and how long their last load took (load-progress.ts turns that into a
 * progress). Fed by the fleet's live events (a "starting" state event
 * begins a load, the next state event ends it; log lines give the steps)
 * and by each 5 s read of the status view (a load that began before the
 * app, or whose event was missed). The last load's duration is learned from
 * ready events, or read once from the event log (it survives the app's
 * restart). Bounded by the number of models.
 */
import type { Db } from "~/server/db/client";
import type { FleetEvent } from "~/server/services/fleet/events";
import type { ServerView } from "~/server/services/fleet/fleet";
import { loadProgress, stageOfLine, type LoadProgress } from "./load-progress";

interface Loading {
  startedAtMs: number;
  logged: { stage: string; fraction: number } | null;
  expectedMs: number | null;
}

export class LoadTracker {
  private readonly loading = new Map<string, Loading>();
  /** Last load duration per model (ms). */
  private readonly lastLoadMs = new Map<string, number>();

  constructor(
    private readonly db: Db,
    private readonly now: () => number,
  ) {}

  /** A live event (state change or log line). */
  onEvent(ev: FleetEvent): void {
    if (ev.type === "log") {
      const l = this.loading.get(ev.modelId);
      const s = l ? stageOfLine(ev.line) : null;
      if (l && s && s.fraction > (l.logged?.fraction ?? -1)) l.logged = s;
      return;
    }
    if (ev.kind !== "state" || !ev.modelId) return;
    const was = this.loading.get(ev.modelId);
    if (ev.state === "starting") {
      if (!was) this.start(ev.modelId, Date.parse(ev.at));
    } else if (was) {
      this.end(ev.modelId, was, ev.state === "ready" ? Date.parse(ev.at) : null);
    }
  }

  /** A model as the status view shows it now. */
  onView(v: ServerView): void {
    const was = this.loading.get(v.modelId);
    if (v.state === "starting") {
      if (!was) this.start(v.modelId, v.startedAt ? Date.parse(v.startedAt) : this.now());
    } else if (was) {
      this.end(v.modelId, was, v.state === "ready" && v.readyAt ? Date.parse(v.readyAt) : null);
    }
  }

  progress(modelId: string): LoadProgress | null {
    const l = this.loading.get(modelId);
    return l ? loadProgress({ startedAtMs: l.startedAtMs, nowMs: this.now(), logged: l.logged, expectedMs: l.expectedMs }) : null;
  }

  all(): Map<string, LoadProgress> {
    const out = new Map<string, LoadProgress>();
    for (const id of this.loading.keys()) out.set(id, this.progress(id)!);
    return out;
  }

  /** Forgets models that are no longer registered. */
  keepOnly(modelIds: ReadonlySet<string>): void {
    for (const id of this.loading.keys()) if (!modelIds.has(id)) this.loading.delete(id);
    for (const id of this.lastLoadMs.keys()) if (!modelIds.has(id)) this.lastLoadMs.delete(id);
  }

  private start(modelId: string, startedAtMs: number): void {
    const l: Loading = { startedAtMs: Number.isFinite(startedAtMs) ? startedAtMs : this.now(), logged: null, expectedMs: this.lastLoadMs.get(modelId) ?? null };
    this.loading.set(modelId, l);
    if (l.expectedMs === null) void this.lastLoadFromEvents(modelId).then((ms) => (l.expectedMs ??= ms), () => undefined);
  }

  private end(modelId: string, l: Loading, readyAtMs: number | null): void {
    this.loading.delete(modelId);
    if (readyAtMs !== null && Number.isFinite(readyAtMs)) this.lastLoadMs.set(modelId, Math.max(0, readyAtMs - l.startedAtMs));
  }

  /** The model's last start → ready in the event log (ms), or null. */
  private async lastLoadFromEvents(modelId: string): Promise<number | null> {
    const ready = await this.db.event.findFirst({ where: { modelId, kind: "state", state: "ready" }, orderBy: { id: "desc" }, select: { id: true, at: true } });
    if (!ready) return null;
    const start = await this.db.event.findFirst({ where: { modelId, kind: "state", state: "starting", id: { lt: ready.id } }, orderBy: { id: "desc" }, select: { at: true } });
    return start ? Math.max(0, ready.at.getTime() - start.at.getTime()) : null;
  }
}
