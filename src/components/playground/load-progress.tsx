"use client";
/**
 * Shown in place of an answer while its model loads: the model, its host and
 * the time since the request went out.
 *
 * The load's own progress (bytes or layers loaded) is the `progress` prop,
 * from useLoadProgress (use-load-progress.ts): until the fleet reports it
 * (issue "See the fleet work", branch `metrics`) it is undefined and only the
 * elapsed time shows; with a fraction (0-1) the bar below is drawn from it.
 */
import { useEffect, useState } from "react";
import { formatDuration } from "~/components/fleet/format";
import styles from "./playground.module.css";

export interface LoadProgressProps {
  model: string;
  host: string;
  /** Epoch ms when the request was sent. */
  since: number;
  /** 0-1 when known (from the fleet's load progress); undefined: not reported. */
  progress?: number;
  /** It crashed and the app restarts it: the line says so (the message is sent again once it runs). */
  restarting?: boolean;
  /** When the message goes again (epoch ms): the line counts down to it instead of up from `since`. */
  restartAt?: number | null;
}

export function LoadProgress({ model, host, since, progress, restarting, restartAt }: LoadProgressProps) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);
  const pct = progress === undefined ? null : Math.round(Math.min(1, Math.max(0, progress)) * 100);
  return (
    <div className={styles.loading} data-testid="model-loading" role="status">
      <span className="spin" data-on="true" aria-hidden="true" style={{ position: "static", margin: 0 }} />
      <span>
        {restarting ? "Restarting" : "Loading"} <strong>{model}</strong> on {host}{restarting ? " after a crash; the message goes again once it runs" : ""}…{" "}
        {/* Not announced each second: the status line says "Loading" once. */}
        <span className="num" aria-hidden="true">
          {restarting && typeof restartAt === "number" && restartAt > now ? `sent again in ${Math.ceil((restartAt - now) / 1000)} s` : formatDuration(now - since)}
        </span>
        {pct !== null ? <span className="num"> · {pct} %</span> : null}
      </span>
      {pct !== null ? <progress className={styles.loadBar} max={100} value={pct} aria-label={`Loading ${model}`} /> : null}
    </div>
  );
}
