"use client";
/**
 * A memory bar per host: its budget, what its running servers hold by their estimates (one segment each;
 * not measured: the model page charts a server's resident memory), what START ALL
 * ENABLED would add (striped segments), and what it would refuse, with the numbers. A legend under the
 * bar names each segment (its colour, name, size): names do not fit inside segments a few pixels wide.
 * Estimates come from the fleet's start planner (servers.memory), refreshed with the fleet's events. While the
 * host cannot be reached the figures say so (memory-figures.ts): what runs there is the last known.
 */
import { useQuery } from "@tanstack/react-query";
import type { CSSProperties } from "react";
import type { RouterOutputs } from "~/components/api/types";
import { useTRPC } from "~/trpc/client";
import styles from "./memory-bars.module.css";
import { memoryFigures } from "./memory-figures";
import { memoryLegend } from "./memory-legend";
import { sizeText } from "./memory-size";

type HostBar = RouterOutputs["servers"]["memory"][number];

export function MemoryBars() {
  const trpc = useTRPC();
  const memory = useQuery({ ...trpc.servers.memory.queryOptions(), refetchInterval: 15_000 });
  if (!memory.data || memory.data.length === 0) return null;
  return (
    <section className={styles.bars} aria-label="Memory per host" data-testid="memory-bars">
      {memory.data.map((h) => (
        <HostMemoryBar key={h.hostId} bar={h} />
      ))}
    </section>
  );
}

export function HostMemoryBar({ bar }: { bar: HostBar }) {
  const budget = bar.budgetBytes;
  const total = bar.usedBytes + bar.startAllBytes;
  const scale = Math.max(budget ?? 0, total, 1);
  const size = (b: number) => sizeText(b, budget ?? scale);
  const legend = memoryLegend(bar.segments);
  const unsized = bar.segments.filter((s) => s.bytes === null);
  // While the host cannot be reached, what runs is the last known: said so, not "estimated for running servers".
  const figures = memoryFigures(bar, size);
  const detail = (s: (typeof legend)[number]["segment"]) =>
    `${s.name}${s.kind === "start-all" ? " (start all would start it)" : ""}: ${size(s.bytes)}${s.estimate ? ` — weights ${size(s.estimate.weightsBytes)}, KV cache ${size(s.estimate.kvCacheBytes)}, compute ${size(s.estimate.computeBytes)}${s.estimate.promptCacheBytes > 0 ? `, prompt cache ${size(s.estimate.promptCacheBytes)}` : ""}` : ""}`;
  return (
    <div className={styles.host} data-testid="memory-bar" data-host-name={bar.host}>
      <div className={styles.head}>
        <strong>{bar.host}</strong>
        <span className="muted" data-testid="memory-figures">
          {figures.text}
        </span>
        <span className={`muted ${styles.basis}`} title={bar.basis}>
          {bar.basis}
        </span>
      </div>
      <div className={styles.track} role="img" aria-label={figures.label}>
        {legend.map(({ segment: s, color }) => (
          <span
            key={s.modelId}
            className={styles.segment}
            data-kind={s.kind}
            data-testid="memory-segment"
            data-model={s.name}
            style={{ width: `${(100 * s.bytes) / scale}%`, "--segment-color": color } as CSSProperties}
            title={detail(s)}
          />
        ))}
        {budget !== null && total > budget ? <span className={styles.budgetLine} style={{ left: `${(100 * budget) / scale}%` }} aria-hidden="true" /> : null}
      </div>
      {legend.length > 0 ? (
        <ul className={styles.legend} aria-label={`Models in ${bar.host}'s memory bar`} data-testid="memory-legend">
          {legend.map(({ segment: s, color }) => (
            <li key={s.modelId} className={styles.entry} data-kind={s.kind} data-testid="memory-label" data-model={s.name} title={detail(s)} style={{ "--segment-color": color } as CSSProperties}>
              <span className={styles.swatch} aria-hidden="true" />
              <span className={styles.entryName}>{s.name}</span>
              <span className={`muted ${styles.entrySize}`}>
                {size(s.bytes)}
                {s.kind === "start-all" ? " · start all" : ""}
              </span>
            </li>
          ))}
        </ul>
      ) : null}
      {unsized.length > 0 ? (
        <p className={`muted ${styles.note}`}>
          Not counted (no estimate): {unsized.map((s) => `${s.name} (${s.note})`).join("; ")}
        </p>
      ) : null}
      {bar.refused.length > 0 ? (
        <ul className={styles.refused} data-testid="memory-refused">
          {bar.refused.map((r) => (
            <li key={r.modelId}>
              START ALL ENABLED would not start <strong>{r.name}</strong>: {r.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
