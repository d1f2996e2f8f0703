/**
 * Waiting for a spawned (or adopted, still loading) server to be ready:
 * `/health` polled on a timer (10 ms, backing off to 250 ms) and at once
 * when its log says it serves (`hint()`, see isReadyHint; only a second
 * hint within AGENT_DEFAULTS.hintGapMs of a hint's probe waits out the gap,
 * not the first one after a timed probe: that cost an on-demand start up to
 * 5 ms between "model loaded" and its probe). Probes are few: each costs the
 * loading server and this agent a connection, and a start-all's servers
 * share the CPU. A 200 counts only when the listener is
 * the server's own (`owned`): a foreign process on the port is not our
 * server. That is looked at once the server answers 503 (it listens, and
 * loads), while it loads: a listener seen to be the server's then stays its
 * own (no second process can listen on the port while it does), and the 200
 * needs no look of its own (0.5-0.9 ms between the 200 and "ready" on every
 * start). Anything less (no listener seen, a foreign one) is looked at again
 * after the 200, as before. The wait returns an outcome; the caller changes
 * the state.
 */
import { AGENT_DEFAULTS } from "../env.ts";
import { probeHealth, type HealthResult } from "./health.ts";
import type { OwnershipSeen } from "./listener-owner.ts";
import type { PortHolder } from "./port.ts";

export interface Exit {
  code: number | null;
  signal: string | null;
}

export type ReadinessOutcome =
  | { kind: "ready" }
  | { kind: "exited"; exit: Exit; foreign: PortHolder | null }
  | { kind: "stop-requested" }
  | { kind: "deadline"; last: HealthResult; foreign: PortHolder | null };

export interface ReadinessTarget {
  host: string;
  port: number;
  deadlineMs: number;
  /** Resolves when the server's process has ended. */
  exited: Promise<Exit>;
  /** True once a stop was asked for (wake() is called then too). */
  stopRequested: () => boolean;
  /** Whether the listener that answered is this server (listener-owner.ts), and whether it was seen to be. */
  owned: () => Promise<OwnershipSeen>;
  /** Called with a 200 from our listener, before "ready" is reported (the record must be on disk first). */
  beforeReady?: () => Promise<void>;
}

export class ReadinessWait {
  private wakeUp: () => void = () => {};
  /** A log line said the server serves since the last probe began (kept for a loop not yet waiting). */
  private hinted = false;
  /** When the last probe that a hint asked for began (performance.now()). */
  private hintProbedAt = -Infinity;

  /** A log line says the server serves: probe now (at most one probe per hint gap). */
  hint(): void {
    this.hinted = true;
    this.wakeUp();
  }

  /** An exit or a stop: end the wait now. */
  wake(): void {
    this.wakeUp();
  }

  /** `probeAtOnce`: probe before the first wait (an adopted server may be ready already; one just spawned is not). */
  async run(t: ReadinessTarget, probeAtOnce: boolean): Promise<ReadinessOutcome> {
    const gap = AGENT_DEFAULTS.hintGapMs;
    const deadline = Date.now() + t.deadlineMs;
    let delay = 10;
    let last: HealthResult = { kind: "refused" };
    let foreign: PortHolder | null = null;
    let exit: Exit | null = null;
    let probeNow = probeAtOnce;
    /** The ownership looked at while the server answered 503 (listening, loading). */
    let ownedWhileLoading: Promise<OwnershipSeen | null> | null = null;
    /** The last wait was cut short (by a hint; an exit or stop also wakes it, and the loop then ends). */
    let woken = false;
    void t.exited.then((e) => {
      exit = e;
      this.wakeUp();
    });
    while (Date.now() < deadline) {
      if (exit || t.stopRequested()) break;
      if (probeNow || this.hinted) {
        if (this.hinted) this.hintProbedAt = performance.now();
        this.hinted = false;
        last = await probeHealth(t.host, t.port, Math.max(50, Math.min(1000, deadline - Date.now())));
        if (t.stopRequested()) break;
        if (last.kind === "loading" && !ownedWhileLoading) ownedWhileLoading = t.owned().catch(() => null);
        if (last.kind === "ok" && !exit) {
          const early = ownedWhileLoading ? await ownedWhileLoading : null;
          const owner = early?.ours && early.seen ? early : await t.owned();
          if (owner.ours) {
            foreign = null;
            await t.beforeReady?.();
            if (t.stopRequested() || exit) break;
            return { kind: "ready" };
          }
          foreign = owner.holder;
        }
        if (exit) break;
      }
      probeNow = true;
      // After a hint the server may turn ready any moment: re-probe soon. A wait not cut short grows the backoff.
      const soon = Math.max(0, gap - (performance.now() - this.hintProbedAt));
      const wait = Math.min(woken || this.hinted ? soon : delay, Math.max(0, deadline - Date.now()));
      woken = await new Promise<boolean>((resolve) => {
        let timer = setTimeout(() => resolve(false), wait);
        this.wakeUp = () => {
          clearTimeout(timer);
          const since = performance.now() - this.hintProbedAt;
          if (since >= gap) return resolve(true);
          timer = setTimeout(() => resolve(true), gap - since);
        };
      });
      this.wakeUp = () => {};
      if (!woken) delay = Math.min(250, Math.ceil(delay * 1.5));
    }
    if (t.stopRequested()) return { kind: "stop-requested" };
    if (exit) return { kind: "exited", exit, foreign };
    return { kind: "deadline", last, foreign };
  }
}
