/**
 * The two timers that watch a running server: its /health (ready ↔
 * unhealthy), and, for a process that is not our child (adopted, or its
 * spawn helper died), whether it still exists. Each returns its cancel.
 */
import { probeHealth, type HealthResult } from "./health.ts";
import { isSameLiveProcess, pidExists } from "./process-table.ts";

function every(ms: number, fn: () => void): () => void {
  const t = setInterval(fn, ms);
  t.unref(); // watchers never keep a one-shot CLI alive
  return () => clearInterval(t);
}

/** Probes host:port every `intervalMs` while `active()`; one probe at a time. */
export function watchHealth(o: { host: string; port: number; intervalMs: number; timeoutMs: number; active: () => boolean; onResult: (r: HealthResult) => void }): () => void {
  let busy = false;
  return every(o.intervalMs, () => {
    if (busy || !o.active()) return;
    busy = true;
    void probeHealth(o.host, o.port, o.timeoutMs)
      .then(o.onResult)
      .finally(() => (busy = false));
  });
}

/**
 * Polls whether `pid` still exists (a syscall), and every `identityEvery`
 * polls that it is still the same process (its start time: pid reuse; on
 * macOS that runs `ps`, so it is asked less often there). Calls `onGone`
 * once it is not.
 */
export function watchPidExit(o: { pid: number; startToken: string; pollMs: number; identityEvery: number; onGone: () => void }): () => void {
  let polls = 0;
  let busy = false;
  let gone = false;
  const end = () => {
    if (gone) return;
    gone = true;
    o.onGone();
  };
  return every(o.pollMs, () => {
    if (busy || gone) return;
    polls += 1;
    if (polls % o.identityEvery !== 0) {
      if (!pidExists(o.pid)) end();
      return;
    }
    busy = true;
    void isSameLiveProcess(o.pid, o.startToken)
      .then((alive) => void (alive || end()))
      .finally(() => (busy = false));
  });
}
