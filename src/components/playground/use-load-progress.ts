"use client";
/**
 * How far a model's load has got, 0-1, or undefined while nobody reports it.
 *
 * From the fleet's load progress (metrics.loadProgress: llama-server's load
 * steps from its log, or the elapsed time against the model's last load;
 * src/server/services/metrics/load-tracker.ts), read every second while a
 * model is named; the playground's loading line draws it (load-progress.tsx).
 * Undefined when the model is not loading or nothing says how far it is
 * (a first load with a quiet log): then only the elapsed time shows.
 */
import { useTRPC } from "~/trpc/client";
import { usePolledModelMetric } from "./use-polled-model-metric";

export function useLoadProgress(modelId: string | null): number | undefined {
  const trpc = useTRPC();
  // metrics.loadProgress answers null for a model that is not loading.
  return usePolledModelMetric(modelId, (input) => trpc.metrics.loadProgress.queryOptions(input))?.fraction ?? undefined;
}
