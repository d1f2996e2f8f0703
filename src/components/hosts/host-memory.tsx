"use client";
/** A host's memory on its card: the budget plans charge against and how it was chosen, the agent's reading. */
import { formatBytes } from "~/components/metrics/format";
import type { HostItem } from "./host-form";

export function HostMemory({ memory }: { memory: HostItem["memory"] }) {
  const r = memory.reading;
  return (
    <dl className="kv" data-testid="host-memory">
      <dt>Memory budget</dt>
      <dd data-testid="host-budget">
        {memory.budgetBytes !== null ? <strong>{formatBytes(memory.budgetBytes)}</strong> : <span className="muted">unknown: starts are not checked</span>} <span className="muted">({memory.basis})</span>
      </dd>
      {r ? (
        <>
          <dt>Physical memory</dt>
          <dd>
            {formatBytes(r.totalBytes)}
            {r.availableBytes !== null ? <span className="muted"> · {formatBytes(r.availableBytes)} free now</span> : null}
          </dd>
          {r.devices.length ? (
            <>
              <dt>Devices</dt>
              <dd className="mono">{r.devices.map((d) => `${d.name}: ${d.description} (${formatBytes(d.totalBytes)}, ${formatBytes(d.freeBytes)} free)`).join("; ")}</dd>
            </>
          ) : null}
          {r.problems.length ? (
            <>
              <dt>Not read</dt>
              <dd className="mono">{r.problems.join("; ")}</dd>
            </>
          ) : null}
        </>
      ) : null}
      {memory.error ? (
        <>
          <dt>Last reading</dt>
          <dd className="mono" style={{ color: "var(--bad)" }}>
            {memory.error}
          </dd>
        </>
      ) : null}
    </dl>
  );
}
