"use client";
/**
 * How far a model's load has got, 0-1, or undefined while nobody reports it.
 *
 * The place for the fleet's load progress (issue "See the fleet work",
 * branch `metrics`): when the fleet reports it, read it here (from the live
 * events or the status row of `modelId`) and the playground's loading line
 * draws it (load-progress.tsx). Until then only the elapsed time shows.
 */
export function useLoadProgress(_modelId: string | null): number | undefined {
  return undefined;
}
