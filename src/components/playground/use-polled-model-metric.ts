"use client";
/**
 * One model's figure from a metrics query (`metrics.queue`, `metrics.loadProgress`: input `{ id }`, the model's
 * id), asked again every MODEL_METRIC_POLL_MS while `modelId` is set (not null) and not asked at all while it is
 * null. The Playground's useQueue and useLoadProgress are this with their own query and reading of its answer.
 */
import { useQuery, type QueryKey, type UseQueryOptions } from "@tanstack/react-query";

/** How often a named model's figure is asked again (ms). */
export const MODEL_METRIC_POLL_MS = 1000;

/**
 * The query's last answer while `modelId` is set; undefined while it is null (whatever an earlier model's
 * answer was) and until the first answer comes. `optionsFor` gives the query's options for a model's input
 * (a tRPC `queryOptions`); it is called with `{ id: "" }` while no model is named, and not run then.
 */
export function usePolledModelMetric<TQueryFnData, TError, TData, TQueryKey extends QueryKey>(
  modelId: string | null,
  optionsFor: (input: { id: string }) => UseQueryOptions<TQueryFnData, TError, TData, TQueryKey>,
): TData | undefined {
  const q = useQuery({ ...optionsFor({ id: modelId ?? "" }), enabled: modelId !== null, refetchInterval: MODEL_METRIC_POLL_MS });
  return modelId !== null ? q.data : undefined;
}
