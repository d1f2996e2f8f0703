"use client";
import { useLive } from "./live-provider";
import styles from "./live.module.css";

const LABEL = { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…" } as const;

/** Fixed-width status of the live stream; announced politely when it changes. */
export function ConnectionIndicator() {
  const { connection } = useLive();
  return (
    <div className={styles.indicator} data-testid="connection-state" data-state={connection} role="status" aria-live="polite" title={connection === "live" ? "Live updates are flowing" : "Live updates paused; the page shows the last known state and refreshes when the connection is back"}>
      <span className={styles.dot} aria-hidden="true" />
      <span>{LABEL[connection]}</span>
    </div>
  );
}
