"use client";
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "~/trpc/client";

export function FleetSummary() {
  const trpc = useTRPC();
  const models = useQuery(trpc.models.list.queryOptions());
  if (models.isPending) return <p aria-busy="true">Loading models…</p>;
  if (models.isError) return <p role="alert">Could not load models: {models.error.message}</p>;
  if (models.data.length === 0) return <p data-testid="empty-state">No models yet. Discover models on a host or import the seed&apos;s registry files.</p>;
  return (
    <ul data-testid="model-list">
      {models.data.map((m) => (
        <li key={m.id}>
          {m.name} — {m.host.name}:{m.port} — {m.server?.observed ?? "stopped"}
        </li>
      ))}
    </ul>
  );
}
