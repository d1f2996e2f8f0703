"use client";
/**
 * The gateway's queue at a model (metrics.queue), read every second while
 * `modelId` is set: the playground names it while a message waits for its
 * first token (waiting-text.ts). Undefined until the first answer.
 */
import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "~/trpc/client";
import type { QueueNow } from "./waiting-text";

export function useQueue(modelId: string | null): QueueNow | undefined {
  const trpc = useTRPC();
  const q = useQuery({ ...trpc.metrics.queue.queryOptions({ id: modelId ?? "" }), enabled: modelId !== null, refetchInterval: 1000 });
  return modelId !== null ? q.data : undefined;
}
