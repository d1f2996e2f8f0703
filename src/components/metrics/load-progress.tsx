"use client";
/**
 * A loading model's progress: a bar and its words ("loading tensors ·
 * 12 s of ~40 s"), from the app's metrics (metrics.fleet / loadProgress).
 */
import type { RouterOutputs } from "~/components/api/types";
import styles from "./metrics.module.css";

export type LoadProgressView = NonNullable<RouterOutputs["metrics"]["loadProgress"]>;

export function LoadProgressBar({ progress }: { progress: LoadProgressView }) {
  const pct = progress.fraction === null ? null : Math.round(progress.fraction * 100);
  const words = [progress.stage, `${Math.round(progress.elapsedMs / 1000)} s${progress.expectedMs !== null ? ` of ~${Math.max(1, Math.round(progress.expectedMs / 1000))} s` : ""}`].filter(Boolean).join(" · ");
  return (
    <span className={styles.progress} data-testid="load-progress" data-fraction={progress.fraction ?? ""}>
      <span className={styles.progressBar} role="progressbar" aria-label="Loading" aria-valuemin={0} aria-valuemax={100} aria-valuenow={pct ?? undefined}>
        <span className={styles.progressFill} style={{ width: `${pct ?? 0}%` }} />
      </span>
      <span>{words}</span>
    </span>
  );
}
