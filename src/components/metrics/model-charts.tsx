"use client";
/**
 * A model's charts: generated and prompt tokens/s, requests in flight and
 * queued, mean latency, and its server's memory. The last hour at 5 s
 * (the app's memory) or the last 24 hours at a minute (SQLite), refreshed
 * at the points' own step.
 */
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useTRPC } from "~/trpc/client";
import { formatBytes, formatRate } from "./format";
import styles from "./metrics.module.css";
import { TimeChart } from "./time-chart";

type Range = "hour" | "day";

export function ModelCharts({ modelId }: { modelId: string }) {
  const trpc = useTRPC();
  const [range, setRange] = useState<Range>("hour");
  const q = useQuery({ ...trpc.metrics.model.queryOptions({ id: modelId, range }), refetchInterval: (query) => query.state.data?.stepMs ?? 5000 });
  const points = q.data?.points ?? [];
  const times = points.map((p) => p.t);

  return (
    <section className="panel" aria-labelledby="charts-title" data-testid="model-charts">
      <div className="panel-head">
        <h2 id="charts-title" style={{ margin: 0 }}>
          Activity
        </h2>
        <div className={styles.range} role="group" aria-label="Time range">
          {(["hour", "day"] as const).map((r) => (
            <button key={r} type="button" className="btn btn-sm" aria-pressed={range === r} onClick={() => setRange(r)}>
              {r === "hour" ? "Last hour" : "Last 24 hours"}
            </button>
          ))}
        </div>
      </div>
      {points.length === 0 ? (
        <p className={styles.empty} data-testid="charts-empty">
          {q.isLoading ? "Loading…" : "No figures yet: they are read every 5 seconds while the server runs."}
        </p>
      ) : null}
      <div className={styles.charts} hidden={points.length === 0}>
        <TimeChart
          title="Tokens per second"
          testId="chart-tokens"
          fromZero
          times={times}
          format={formatRate}
          series={[
            { label: "generated", color: "#5b9dff", values: points.map((p) => p.generatedTokensPerS) },
            { label: "prompt", color: "#b48cff", values: points.map((p) => p.promptTokensPerS) },
          ]}
        />
        <TimeChart
          title="Requests"
          testId="chart-requests"
          fromZero
          times={times}
          format={(v) => (Number.isInteger(v) ? String(v) : "")}
          series={[
            { label: "in flight", color: "#3ecf8e", values: points.map((p) => p.inFlight) },
            { label: "queued", color: "#f5b942", values: points.map((p) => p.queued) },
          ]}
        />
        <TimeChart title="Latency (mean, ms)" testId="chart-latency" fromZero times={times} format={(v) => `${Math.round(v)}`} series={[{ label: "latency ms", color: "#ff6b6b", values: points.map((p) => p.latencyMs) }]} />
        <TimeChart title="Memory" testId="chart-memory" fromZero times={times} format={formatBytes} series={[{ label: "resident", color: "#7aa7ff", values: points.map((p) => p.memoryBytes) }]} />
      </div>
    </section>
  );
}
