"use client";
/**
 * A host's memory on its card: the budget plans charge against and how it was chosen, the agent's reading.
 * While the host cannot be reached (memory.link, shared/host-reach.ts), the reading is the last contact's and
 * the card says so (host-memory-text.ts).
 */
import { formatBytes } from "~/components/metrics/format";
import { hostUnreachable } from "~/shared/host-reach";
import type { HostItem } from "./host-form";
import { budgetAgeText, freeMemoryText } from "./host-memory-text";

export function HostMemory({ memory }: { memory: HostItem["memory"] }) {
  const r = memory.reading;
  const away = hostUnreachable(memory.link);
  const free = r ? freeMemoryText(r, away, formatBytes) : null;
  const budgetAge = budgetAgeText(memory.source, r, away);
  return (
    <dl className="kv" data-testid="host-memory">
      <dt>Memory budget</dt>
      <dd data-testid="host-budget">
        {memory.budgetBytes !== null ? <strong>{formatBytes(memory.budgetBytes)}</strong> : <span className="muted">unknown: starts are not checked</span>} <span className="muted">({memory.basis})</span>
        {budgetAge ? <span className="muted" data-testid="host-budget-age"> · {budgetAge}</span> : null}
      </dd>
      {r ? (
        <>
          <dt>Physical memory</dt>
          <dd>
            {formatBytes(r.totalBytes)}
            {free ? <span className="muted" data-testid="host-free-memory"> · {free}</span> : null}
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
