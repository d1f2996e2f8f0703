"use client";
import { ALIVE_STATES } from "synapse-host-agent/server-states";
import { useNow } from "~/components/live/now";
import styles from "./fleet.module.css";
import { formatDuration, toTime } from "./format";

const RUNNING = ALIVE_STATES;

/**
 * Time since the process started, ticking; "—" when not running. `frozenMs` (its host unreachable): the
 * uptime when the link was lost, not ticking (the process may have ended since); null: not known, "—".
 */
export function Uptime({ state, startedAt, frozenMs }: { state: string; startedAt: string | Date | null | undefined; frozenMs?: number | null | undefined }) {
  const now = useNow();
  const since = toTime(startedAt);
  if (frozenMs !== undefined) {
    const known = RUNNING.has(state) && frozenMs !== null;
    // Two lines: the column is narrow (a trial's "1 s at last contact" ran into RESTARTS on one).
    return (
      <span data-frozen="true" title="when the app lost its host: what runs there now is not known">
        <span className="num nowrap">{known ? formatDuration(frozenMs) : "—"}</span>
        {known ? <span className={styles.uptimeNote}> at last contact</span> : null}
      </span>
    );
  }
  const text = RUNNING.has(state) && since !== null && now !== null ? formatDuration(now - since) : "—";
  return <span className="num nowrap">{text}</span>;
}
