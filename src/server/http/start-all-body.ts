/**
 * The body of REST start-all (`POST /api/models/servers/start-all`), the
 * seed's endpoint: one result per enabled model, and counts of what started
 * and what failed. `started` counts servers that are ready (or on their way,
 * with `wait=false`), not attempts. Status 200 when none failed, 207 when
 * some did, 202 when the caller did not wait.
 */
export interface StartAllBody<R> {
  ok: boolean;
  /** Servers ready (or, without waiting, starting), those that were already running among them. */
  started: number;
  /** Present when some of `started` were running before this call (their results' memory verdict is "running"): nothing was started for them. */
  alreadyRunning?: number;
  /** Servers that failed or stopped instead (refused ones among them). */
  failed: number;
  /** Present when some crashed and wait for the restart their restart policy planned (each result's `restartAt`): left to it, not failed. */
  restarting?: number;
  /** Present when some were not started because they do not fit in their host's memory budget (each result's `error` has the numbers). */
  refused?: number;
  /**
   * Present when enabled models with load policy on-demand were left as they
   * are (start-all starts `always` models only): their names, each started by
   * the first request that names it (/v1) or by its Start button.
   */
  onDemand?: string[];
  results: R[];
}

/** `onDemand`: the enabled on-demand models start-all left alone (by name; see StartAllBody). */
export function startAllResponse<R extends { state: string; memory?: { verdict: string } | null; restartAt?: string }>(results: R[], wait: boolean, onDemand: readonly string[] = []): { status: 200 | 202 | 207; body: StartAllBody<R> } {
  const up = results.filter((r) => r.state === "ready" || r.state === "starting");
  const restarting = results.filter((r) => r.restartAt !== undefined && !up.includes(r)).length;
  const failed = results.length - up.length - restarting;
  const refused = results.filter((r) => r.memory?.verdict === "refused").length;
  const alreadyRunning = up.filter((r) => r.memory?.verdict === "running").length;
  return {
    status: !wait ? 202 : failed === 0 ? 200 : 207,
    body: {
      ok: failed === 0,
      started: up.length,
      ...(alreadyRunning > 0 ? { alreadyRunning } : {}),
      failed,
      ...(restarting > 0 ? { restarting } : {}),
      ...(refused > 0 ? { refused } : {}),
      ...(onDemand.length > 0 ? { onDemand: [...onDemand] } : {}),
      results,
    },
  };
}
