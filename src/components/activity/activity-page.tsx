"use client";
/**
 * Activity: the fleet's event log, newest first. "Why did my model stop at
 * 3 am?" State changes (with the stop cause in words), actions (starts on
 * demand, idle unloads, start all), errors and host events, for every model
 * or one, of every kind or one.
 *
 * History comes a page at a time (`servers.history`, an infinite query: a
 * refetch reloads every loaded page from the newest, so none is left with a
 * gap). New events arrive through `servers.events` subscribed from the first
 * page's `liveFrom`: every event after the loaded pages once (the stream
 * resumes from its last id on reconnect; ids dedupe a re-opened stream).
 */
import { skipToken, useInfiniteQuery, useQuery, useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import Link from "next/link";
import { memo, useCallback, useEffect, useId, useMemo, useRef, useState } from "react";
import { errorMessage } from "~/components/api/errors";
import { StateBadge } from "~/components/fleet/state-badge";
import { isServerState } from "~/shared/display-state";
import { useNow } from "~/components/live/now";
import { useTRPC } from "~/trpc/client";
import { ACTIVITY_KINDS, causeText, formatAgo, fromHistory, fromLive, mergeActivity, withNames, type ActivityFilter, type ActivityItem, type ActivityKind, type KnownNames } from "./activity-item";
import styles from "./activity.module.css";
import { useReopenOnError } from "~/components/live/reopen-on-error";

const PAGE_SIZE = 100;
/** Live events kept above the pages; beyond this the pages are refetched (which moves them up), so the list stays bounded. */
const MAX_LIVE = 1000;

function useKnownNames(pages: readonly ActivityItem[]): KnownNames {
  const trpc = useTRPC();
  const models = useQuery(trpc.models.list.queryOptions({}));
  return useMemo(() => {
    const m = new Map<string, string>();
    const h = new Map<string, string>();
    for (const e of pages) {
      if (e.modelId && e.modelName) m.set(e.modelId, e.modelName);
      if (e.hostId && e.hostName) h.set(e.hostId, e.hostName);
    }
    for (const row of models.data ?? []) {
      m.set(row.id, row.name);
      h.set(row.host.id, row.host.name);
    }
    return { models: m, hosts: h };
  }, [pages, models.data]);
}

/** Keeps the filters in the address (?model=ID&kind=KIND) without a navigation, so a reload or a shared link shows the same list. */
function writeFilterToUrl(filter: ActivityFilter): void {
  const params = new URLSearchParams(window.location.search);
  for (const [key, value] of [
    ["model", filter.modelId],
    ["kind", filter.kind],
  ] as const) {
    if (value) params.set(key, value);
    else params.delete(key);
  }
  const query = params.toString();
  window.history.replaceState(window.history.state, "", `${window.location.pathname}${query ? `?${query}` : ""}`);
}

export function ActivityPage({ initialModelId, initialKind }: { initialModelId?: string | undefined; initialKind?: ActivityKind | undefined }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const formId = useId().replace(/:/g, "");
  const [filter, setFilterState] = useState<ActivityFilter>({ modelId: initialModelId, kind: initialKind });
  const setFilter = (next: ActivityFilter) => {
    setFilterState(next);
    writeFilterToUrl(next);
  };

  const history = useInfiniteQuery(
    trpc.servers.history.infiniteQueryOptions(
      { limit: PAGE_SIZE, ...(filter.modelId ? { modelId: filter.modelId } : {}), ...(filter.kind ? { kind: filter.kind } : {}) },
      { getNextPageParam: (page) => page.nextCursor ?? undefined },
    ),
  );
  const pages = useMemo(() => (history.data?.pages ?? []).map((p) => p.events.map(fromHistory)), [history.data]);
  const paged = useMemo(() => pages.flat(), [pages]);
  const liveFrom = history.data?.pages[0]?.liveFrom ?? null;
  const names = useKnownNames(paged);
  const namesRef = useRef(names);
  namesRef.current = names;

  const liveFromNumber = liveFrom === null ? Number.POSITIVE_INFINITY : Number(liveFrom);
  const liveFromRef = useRef(liveFromNumber);
  liveFromRef.current = liveFromNumber;

  // Live events after liveFrom, each id once (a re-opened stream replays from liveFrom).
  const [live, setLive] = useState<ActivityItem[]>([]);
  const liveIds = useRef(new Set<number>());
  const onData = useCallback((raw: unknown) => {
    const item = fromLive(raw, namesRef.current);
    if (!item || item.id <= liveFromRef.current || liveIds.current.has(item.id)) return;
    liveIds.current.add(item.id);
    setLive((old) => [item, ...old]);
    // A model created since the models were read: read them again for its name.
    if (item.modelId && item.modelName === null) void queryClient.invalidateQueries({ queryKey: trpc.models.list.queryKey() });
  }, [queryClient, trpc]);
  const sub = useSubscription(
    trpc.servers.events.subscriptionOptions(liveFrom === null ? skipToken : { lastEventId: liveFrom, ...(filter.modelId ? { modelIds: [filter.modelId] } : {}) }, { onData }),
  );
  // A stream that failed for good is re-opened with backoff (1 s, 2 s, 4 s … 10 s).
  useReopenOnError(sub);
  const subStatus = sub.status;

  // Keep only live events the pages do not hold yet; too many, and the pages are refetched to take them in.
  const { refetch } = history;
  useEffect(() => {
    setLive((old) => {
      const kept = old.filter((i) => i.id > liveFromNumber);
      if (kept.length === old.length) return old;
      liveIds.current = new Set(kept.map((i) => i.id));
      return kept;
    });
  }, [liveFromNumber]);
  useEffect(() => {
    // Not cancelling a refetch in flight: events keep coming while it runs.
    if (live.length > MAX_LIVE) void refetch({ cancelRefetch: false });
  }, [live.length, refetch]);

  const rows = useMemo(() => mergeActivity(live, pages, liveFromNumber, filter).map((i) => withNames(i, names)), [live, pages, liveFromNumber, filter, names]);
  const now = useNow();

  return (
    <>
      <div className="page-head">
        <h1>Activity</h1>
        <span className={styles.live} data-state={subStatus === "pending" ? "live" : "waiting"} data-testid="activity-live" aria-live="polite">
          {subStatus === "pending" ? "New events appear as they happen" : liveFrom === null ? "" : "Connecting to live events…"}
        </span>
      </div>
      <form className={styles.filters} aria-label="Filter events" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor={`${formId}-model`}>Model</label>
          <select id={`${formId}-model`} value={filter.modelId ?? ""} onChange={(e) => setFilter({ ...filter, modelId: e.target.value || undefined })} data-testid="activity-model">
            <option value="">All models, hosts and the fleet</option>
            {[...names.models].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => (
              <option key={id} value={id}>
                {name}
              </option>
            ))}
            {filter.modelId && !names.models.has(filter.modelId) ? <option value={filter.modelId}>a deleted or unknown model</option> : null}
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${formId}-kind`}>Kind</label>
          <select id={`${formId}-kind`} value={filter.kind ?? ""} onChange={(e) => setFilter({ ...filter, kind: (e.target.value || undefined) as ActivityKind | undefined })} data-testid="activity-kind">
            <option value="">Every kind</option>
            {ACTIVITY_KINDS.map((k) => (
              <option key={k.kind} value={k.kind}>
                {k.label}
              </option>
            ))}
          </select>
        </div>
      </form>

      {history.isError ? (
        <div className="notice" data-tone="bad" role="alert">
          <div>Could not load the events: {errorMessage(history.error)}</div>
        </div>
      ) : null}

      {history.isSuccess && rows.length === 0 ? (
        <div className="empty" data-testid="activity-empty">
          <h2>No events</h2>
          <p>{filter.modelId || filter.kind ? "None match these filters yet. New ones appear here as they happen." : "Starts, stops, crashes and host changes appear here as they happen."}</p>
        </div>
      ) : (
        <div className={styles.tableWrap}>
          <table className={styles.table} aria-label="Events, newest first" aria-busy={history.isPending} data-testid="activity-list">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Model or host</th>
                <th scope="col">Kind</th>
                <th scope="col">State</th>
                <th scope="col">What happened</th>
              </tr>
            </thead>
            <tbody>
              {history.isPending ? (
                <tr className={styles.skeletonRow}>
                  <td colSpan={5}>
                    <div className="skeleton" style={{ height: 18 }} />
                  </td>
                </tr>
              ) : (
                rows.map((r) => <EventRow key={r.id} item={r} ago={now === null ? "" : formatAgo(now - Date.parse(r.at))} />)
              )}
            </tbody>
          </table>
        </div>
      )}

      {history.hasNextPage || history.isFetchingNextPage ? (
        <div className={styles.more}>
          <button type="button" className="btn" onClick={() => void history.fetchNextPage()} disabled={history.isFetchingNextPage} aria-busy={history.isFetchingNextPage} data-testid="activity-older">
            <span className="spin" data-on={history.isFetchingNextPage} aria-hidden="true" />
            Load older
          </button>
        </div>
      ) : history.isSuccess && rows.length > 0 ? (
        <p className={`${styles.more} faint`} data-testid="activity-end">
          No older events.
        </p>
      ) : null}
    </>
  );
}

const KIND_LABEL: Record<ActivityKind, string> = { state: "state", action: "action", error: "error", host: "host" };

const TIME_FORMAT = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });

const EventRow = memo(function EventRow({ item, ago }: { item: ActivityItem; ago: string }) {
  const at = new Date(item.at);
  const cause = causeText(item);
  return (
    <tr className={styles.row} data-testid="activity-row" data-event-id={item.id} data-kind={item.kind}>
      <td className={styles.time}>
        <time dateTime={item.at} title={at.toString()}>
          {TIME_FORMAT.format(at)}
        </time>
        <span className={styles.ago}>{ago}</span>
      </td>
      <td className={styles.subject}>
        {item.modelId ? (
          <>
            <Link href={`/models/${item.modelId}`} data-testid="activity-model-link">
              {item.modelName ?? "a model"}
            </Link>
            {item.hostName ? <span className={styles.host}>on {item.hostName}</span> : null}
          </>
        ) : item.hostId ? (
          <span>host {item.hostName ?? <span className="faint">(deleted)</span>}</span>
        ) : (
          <span className="muted">fleet</span>
        )}
      </td>
      <td>
        <span className="tag" data-kind={item.kind}>
          {KIND_LABEL[item.kind]}
        </span>
      </td>
      <td className={styles.state}>
        {item.state ? item.kind === "state" && isServerState(item.state) ? <StateBadge state={item.state} /> : <span className={`tag ${styles.link}`} data-state={item.state}>{item.state}</span> : <span className="faint">—</span>}
        {cause ? (
          <span className={styles.cause} data-testid="activity-cause" data-cause={item.cause ?? undefined}>
            {cause}
          </span>
        ) : null}
      </td>
      <td className={styles.message} data-kind={item.kind}>
        {item.message}
      </td>
    </tr>
  );
});
