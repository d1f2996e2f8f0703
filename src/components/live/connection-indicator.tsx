"use client";
import { useLive } from "./live-provider";
import { useShutdownState } from "./shutdown-banner";
import styles from "./live.module.css";

const LABEL = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", "shutting-down": "Shutting down…" } as const;

/**
 * Fixed-width status of the live stream; announced politely when it changes. While the app shuts down (the
 * banner's servers.shutdown, one query for both) it reads "Shutting down…", not "Live" (a trial).
 */
export function ConnectionIndicator() {
  const { connection } = useLive();
  const shutdown = useShutdownState();
  const state = connection === "live" && shutdown.data && !shutdown.isError ? "shutting-down" : connection;
  return (
    <div className={styles.indicator} data-testid="connection-state" data-state={state} role="status" aria-live="polite" title={state === "live" ? "Live updates are flowing" : state === "shutting-down" ? "The app is shutting down: see the banner below" : "Live updates paused; the page shows the last known state and refreshes when the connection is back"}>
      <span className={styles.dot} aria-hidden="true" />
      <span>{LABEL[state]}</span>
    </div>
  );
}
