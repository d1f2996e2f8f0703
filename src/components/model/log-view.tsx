"use client";
/**
 * A server's log: the last lines from the host's log file, then every new
 * line as it is written (the events subscription with logs on, for this
 * model only). Follow keeps the newest line in view; scrolling up pauses it.
 * Search asks the host for the matching lines of the whole log (the rotated
 * copy and the current file, not only the lines shown), then keeps the
 * matching lines that stream in after them; each match is marked. Until the
 * host answers (or when it cannot), the lines shown are searched.
 */
import { skipToken, useQuery } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { memo, useCallback, useDeferredValue, useEffect, useId, useLayoutEffect, useMemo, useRef, useState } from "react";
import { errorMessage } from "~/components/api/errors";
import { toFleetEvent } from "~/components/live/fleet-event";
import { linesAfterTail, searchAnswerUsable, type NumberedLine } from "./log-merge";
import { LOG_TAIL_LINES } from "./log-tail";
import { useTRPC } from "~/trpc/client";
import styles from "./model.module.css";
import { useReopenOnError } from "~/components/live/reopen-on-error";

const MAX_LINES = 5000;
/** The most matches a search shows from the host's files (the newest; the count says how many there were). */
const SEARCH_LINES = 2000;
/** A search is sent once typing has paused this long (ms). */
const SEARCH_DEBOUNCE_MS = 300;

/** A shown line: `seq` is the host's number for a line that streamed in, null for the fetched tail's lines. */
interface Line extends NumberedLine {
  n: number;
}


function seqOf(data: unknown): number | null {
  return typeof data === "object" && data !== null && "seq" in data && typeof data.seq === "number" ? data.seq : null;
}

function linesOf(data: unknown): string[] {
  if (Array.isArray(data)) return data.filter((l): l is string => typeof l === "string");
  if (typeof data === "object" && data !== null && "lines" in data) return linesOf((data as { lines: unknown }).lines);
  return [];
}

/**
 * `hasRun`: the server has been started at some point, so the host has a log
 * file to read (a never-started server has none; its lines arrive live).
 */
export function LogView({ modelId, hasRun, onLines }: { modelId: string; hasRun: boolean; onLines?: (lines: readonly string[]) => void }) {
  const id = useId().replace(/:/g, "");
  const trpc = useTRPC();
  const initial = useQuery({ ...trpc.servers.logs.queryOptions({ id: modelId, lines: LOG_TAIL_LINES }), staleTime: 0, enabled: hasRun, retry: false });
  const [lines, setLines] = useState<Line[]>([]);
  const counter = useRef(0);
  const pending = useRef<NumberedLine[]>([]);
  const flushTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const [follow, setFollow] = useState(true);
  const [query, setQuery] = useState("");
  const deferredQuery = useDeferredValue(query);
  const box = useRef<HTMLDivElement>(null);

  const toLines = (live: NumberedLine[]): Line[] => live.map((l) => ({ n: ++counter.current, text: l.text, seq: l.seq }));

  // The file's tail replaces the view whenever it is (re)fetched (first load,
  // a start, a reconnect); the lines that streamed in after its last line follow it.
  useEffect(() => {
    if (!initial.data) return;
    const tailSeq = seqOf(initial.data);
    const tail = linesOf(initial.data).map((text) => ({ text, seq: null }));
    const unshown = pending.current;
    pending.current = [];
    setLines((old) => [...toLines(tail), ...linesAfterTail(old, tailSeq), ...toLines(linesAfterTail(unshown, tailSeq))].slice(-MAX_LINES));
  }, [initial.data]);

  const flush = useCallback(() => {
    flushTimer.current = null;
    const batch = pending.current;
    pending.current = [];
    if (batch.length) setLines((old) => [...old, ...toLines(batch)].slice(-MAX_LINES));
  }, []);

  const onData = useCallback(
    (raw: unknown) => {
      const ev = toFleetEvent(raw);
      if (!ev || ev.kind !== "log" || ev.modelId !== modelId || ev.line === null) return;
      pending.current.push({ text: ev.line, seq: ev.seq });
      // Lines arrive in bursts while a model loads: render at most ten times a second.
      flushTimer.current ??= setTimeout(flush, 100);
    },
    [modelId, flush],
  );
  const startedOnce = useRef(false);
  const { refetch } = initial;
  const onStarted = useCallback(() => {
    if (startedOnce.current && hasRun) void refetch();
    startedOnce.current = true;
  }, [refetch, hasRun]);
  const sub = useSubscription(trpc.servers.events.subscriptionOptions({ modelIds: [modelId], logs: true }, { onData, onStarted }));
  // A stream that failed for good is re-opened with backoff (1 s, 2 s, 4 s … 10 s).
  useReopenOnError(sub);
  useEffect(() => () => void (flushTimer.current && clearTimeout(flushTimer.current)), []);

  useEffect(() => {
    onLines?.(lines.map((l) => l.text));
  }, [lines, onLines]);

  const q = deferredQuery.trim().toLowerCase();
  // The host's search runs once typing pauses; a cleared box clears it at once.
  const [searchText, setSearchText] = useState("");
  useEffect(() => {
    const text = query.trim();
    if (text === "") return setSearchText("");
    const t = setTimeout(() => setSearchText(text), SEARCH_DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [query]);
  const searching = hasRun && searchText !== "";
  const found = useQuery({ ...trpc.servers.logs.queryOptions(searching ? { id: modelId, lines: SEARCH_LINES, search: searchText } : skipToken), staleTime: 0, retry: false });
  // An error is shown for the text in the box, not for one typed before it.
  const forQuery = searching && searchText.toLowerCase() === q;
  // A tail fetched after the host's answer replaced the lines that streamed in after its cut: until the search
  // is asked again (below), the lines shown are searched, and no match drops out (searchAnswerUsable).
  const answerCurrent = found.dataUpdatedAt >= initial.dataUpdatedAt;
  const answered = searching ? found.data : undefined;
  const fromHost = answered?.search && searchAnswerUsable({ text: answered.search.text, answeredAt: found.dataUpdatedAt }, q, initial.dataUpdatedAt) ? answered : null;
  const { refetch: refetchSearch } = found;
  const searchSettled = found.isSuccess && !found.isFetching;
  useEffect(() => {
    if (searching && searchSettled && !answerCurrent) void refetchSearch();
  }, [searching, searchSettled, answerCurrent, refetchSearch]);
  const shown = useMemo((): Line[] => {
    if (!q) return lines;
    const local = lines.filter((l) => l.text.toLowerCase().includes(q));
    if (!fromHost) return local;
    // The host's matches, then the matching lines that streamed in after its cut (its seq).
    return [...fromHost.lines.map((text, i) => ({ n: -1 - i, text, seq: null })), ...linesAfterTail(local, fromHost.seq)];
  }, [lines, q, fromHost]);
  const search = fromHost?.search ?? null;
  // The host has been (or is about to be) asked and has not answered for this text: the local matches are a first look.
  const awaitingHost = q !== "" && hasRun && !fromHost && !(forQuery && found.isError);
  // The host's count, plus the matches that streamed in after its cut.
  const matchCount = search ? search.matches + shown.length - fromHost!.lines.length : shown.length;

  useLayoutEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [shown, follow]);

  const onScroll = () => {
    const el = box.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    if (!atBottom && follow) setFollow(false);
  };

  return (
    <section className="panel" aria-labelledby={`${id}-title`} data-testid="log-view">
      <div className="panel-head">
        <h2 id={`${id}-title`}>Log</h2>
        <div className={styles.logTools}>
          <div className={styles.search}>
            <label htmlFor={`${id}-search`} className="visually-hidden">
              Search the log
            </label>
            <input id={`${id}-search`} type="search" placeholder="Search the log" maxLength={200} value={query} onChange={(e) => setQuery(e.target.value)} data-testid="log-search" />
          </div>
          <span className={`${styles.matchCount} num muted`} aria-live="polite" data-testid="log-match-count" title={search?.note ?? undefined}>
            {q
              ? `${matchCount} match${matchCount === 1 ? "" : "es"}${search ? (search.note ? " in the last lines" : search.searchedAll ? " in the whole log" : " in the log's last part") : awaitingHost ? " in the lines shown; searching the whole log…" : " in the lines shown"}`
              : `${lines.length} line${lines.length === 1 ? "" : "s"}`}
          </span>
          <label className="switch">
            <input type="checkbox" role="switch" checked={follow} onChange={(e) => setFollow(e.target.checked)} data-testid="log-follow" />
            <span>Follow</span>
          </label>
        </div>
      </div>
      {q && search?.note ? (
        <p className="notice" data-tone="warn" role="note" data-testid="log-search-note">
          {search.note}
        </p>
      ) : null}
      {q && search && search.matches > fromHost!.lines.length ? (
        <p className="muted" data-testid="log-search-more">
          Showing the newest {fromHost!.lines.length} of {search.matches} matches{fromHost!.logPath ? ` (all of them: grep the file ${fromHost!.logPath} on the host)` : ""}.
        </p>
      ) : null}
      {q && forQuery && found.isError ? (
        <p className="field-error" role="alert">
          Could not search the whole log: {errorMessage(found.error)}. Searching the lines shown.
        </p>
      ) : null}
      {initial.isError ? (
        <p className="field-error" role="alert">
          Could not read the log: {errorMessage(initial.error)}
        </p>
      ) : null}
      <div className={styles.logWrap}>
      <div ref={box} className={styles.log} onScroll={onScroll} tabIndex={0} role="log" aria-label="Server log" aria-live="off" data-testid="log-lines">
        {shown.length === 0 ? (
          <p className={styles.logEmpty}>{hasRun && initial.isPending ? "Loading…" : awaitingHost ? "Searching the whole log…" : q ? "No line matches." : "No output yet. The log fills in when the server starts."}</p>
        ) : (
          shown.map((l) => <LogLine key={l.n} text={l.text} query={q} />)
        )}
      </div>
      {!follow ? (
        <button type="button" className={`btn btn-sm ${styles.jump}`} onClick={() => setFollow(true)}>
          Jump to latest
        </button>
      ) : null}
      </div>
    </section>
  );
}

const LogLine = memo(function LogLine({ text, query }: { text: string; query: string }) {
  const tone = /\b(error|failed|fatal)\b/i.test(text) ? "bad" : /\bwarn(ing)?\b/i.test(text) ? "warn" : /ggml_metal/i.test(text) ? "gpu" : undefined;
  if (!query) return <div className={styles.logLine} data-tone={tone}>{text || "\u00a0"}</div>;
  const parts: React.ReactNode[] = [];
  const lower = text.toLowerCase();
  let at = 0;
  for (let i = lower.indexOf(query); i !== -1; i = lower.indexOf(query, i + query.length)) {
    parts.push(text.slice(at, i), <mark key={i}>{text.slice(i, i + query.length)}</mark>);
    at = i + query.length;
  }
  parts.push(text.slice(at));
  return (
    <div className={styles.logLine} data-tone={tone}>
      {parts}
    </div>
  );
});
