/**
 * The Activity page's rows (pure): one shape for an event from the history
 * query and one from the live stream, the filters applied to live events
 * (the history query applies them on the server), the merge of both lists,
 * and the words for times and stop causes.
 */
import { isStopCause, type StopCause } from "synapse-host-agent/server-states";
import type { RouterOutputs } from "~/components/api/types";
import { stopCauseText } from "~/components/fleet/stop-cause";
import { toFleetEvent } from "~/components/live/fleet-event";

export type HistoryEvent = RouterOutputs["servers"]["history"]["events"][number];
export type ActivityKind = HistoryEvent["kind"];

export const ACTIVITY_KINDS: readonly { kind: ActivityKind; label: string }[] = [
  { kind: "state", label: "State changes" },
  { kind: "action", label: "Actions" },
  { kind: "error", label: "Errors" },
  { kind: "host", label: "Host links" },
];

export function isActivityKind(value: unknown): value is ActivityKind {
  return ACTIVITY_KINDS.some((k) => k.kind === value);
}

export interface ActivityItem {
  /** The event's id (the Event row's). */
  id: number;
  /** ISO time. */
  at: string;
  kind: ActivityKind;
  modelId: string | null;
  /** Null for a fleet or host event, or a live event of a model the page does not know yet. */
  modelName: string | null;
  hostId: string | null;
  hostName: string | null;
  state: string | null;
  message: string;
  /** Why the server stopped or exited, when a state event says. */
  cause: StopCause | null;
}

export interface ActivityFilter {
  modelId?: string | undefined;
  kind?: ActivityKind | undefined;
}

/** Names the page knows, for live events (which carry ids only). */
export interface KnownNames {
  models: ReadonlyMap<string, string>;
  hosts: ReadonlyMap<string, string>;
}

function causeOf(data: unknown): StopCause | null {
  const cause = typeof data === "object" && data !== null ? (data as { cause?: unknown }).cause : undefined;
  return isStopCause(cause) ? cause : null;
}

export function fromHistory(e: HistoryEvent): ActivityItem {
  return { id: e.id, at: e.at, kind: e.kind, modelId: e.modelId, modelName: e.modelName, hostId: e.hostId, hostName: e.hostName, state: e.state, message: e.message, cause: causeOf(e.data) };
}

/** One item of the `servers.events` subscription as a row; null for log lines and anything that is not a persisted event. */
export function fromLive(raw: unknown, names: KnownNames): ActivityItem | null {
  const e = toFleetEvent(raw);
  if (!e || e.kind === "log" || e.id === null || !/^\d+$/.test(e.id) || e.at === null) return null;
  // The stream carries ids only: the names are the page's (withNames).
  return withNames({ id: Number(e.id), at: e.at, kind: e.kind, modelId: e.modelId, modelName: null, hostId: e.hostId, hostName: null, state: e.state, message: e.message, cause: isStopCause(e.cause) ? e.cause : null }, names);
}

/** The history query's filters, for live events: a model filter keeps only that model's events (not fleet or host ones). */
export function matches(item: ActivityItem, filter: ActivityFilter): boolean {
  if (filter.modelId && item.modelId !== filter.modelId) return false;
  if (filter.kind && item.kind !== filter.kind) return false;
  return true;
}

/**
 * What the page shows, newest first: live events newer than the pages'
 * `liveFrom` (older ones are on the pages, which a refetch may have moved
 * up), then the pages; each id once.
 */
export function mergeActivity(live: readonly ActivityItem[], pages: readonly (readonly ActivityItem[])[], liveFrom: number, filter: ActivityFilter): ActivityItem[] {
  const out: ActivityItem[] = [];
  const seen = new Set<number>();
  const fresh = live.filter((i) => i.id > liveFrom && matches(i, filter)).sort((a, b) => b.id - a.id);
  for (const i of [...fresh, ...pages.flat()]) {
    if (seen.has(i.id)) continue;
    seen.add(i.id);
    out.push(i);
  }
  return out;
}

/** "just now", "42 s ago", "3 min ago", "5 h ago", "2 d ago" for an age in ms (a future time, clock skew, reads "just now"). */
export function formatAgo(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

/** Why a server stopped or exited, in plain words (STOP_CAUSE_TEXT), for a state event that says; null otherwise (an action's cause is in its message). */
export function causeText(item: Pick<ActivityItem, "kind" | "state" | "cause">): string | null {
  return item.kind === "state" && item.state ? stopCauseText(item.state, item.cause) : null;
}

/** Names a live event did not have when it arrived (a model created since the page loaded), once the page knows them. */
export function withNames(item: ActivityItem, names: KnownNames): ActivityItem {
  const modelName = item.modelName ?? (item.modelId ? (names.models.get(item.modelId) ?? null) : null);
  const hostName = item.hostName ?? (item.hostId ? (names.hosts.get(item.hostId) ?? null) : null);
  return modelName === item.modelName && hostName === item.hostName ? item : { ...item, modelName, hostName };
}
