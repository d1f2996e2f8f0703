"use client";
/**
 * The gateway's queue at a model (metrics.queue), read every second while
 * `modelId` is set: the playground names it while a message waits for its
 * first token (waiting-text.ts). Undefined until the first answer.
 */
import { useTRPC } from "~/trpc/client";
import { usePolledModelMetric } from "./use-polled-model-metric";
import type { QueueNow } from "./waiting-text";

export function useQueue(modelId: string | null): QueueNow | undefined {
  const trpc = useTRPC();
  return usePolledModelMetric(modelId, (input) => trpc.metrics.queue.queryOptions(input));
}
