/**
 * The reconciler's decisions for one host, as a pure function: given what
 * the database wants and last recorded for each model, and what the host's
 * agent reports now, what to do. The fleet applies the actions through the
 * host's link (fleet.ts); keeping the rules here makes them testable without
 * processes.
 */
import type { ServerStatus } from "synapse-host-agent/protocol";
import { ALIVE_STATES } from "synapse-host-agent/server-states";

/** Agent states in which a server process exists. */
export { ALIVE_STATES };

export interface ModelFacts {
  modelId: string;
  /** Also the server id on the host. */
  name: string;
  desired: "running" | "stopped";
  /** When `desired` last changed (epoch ms; null before this was recorded). */
  desiredAt: number | null;
  /** What the database last recorded. */
  observed: string;
  pid: number | null;
  /** A start or stop is in flight, or a restart is scheduled: leave it to that. */
  busy: boolean;
  /** When a scheduled restart is due (epoch ms); survives an app restart in the database, the timer does not. */
  nextRestartAt: number | null;
  /** A Restart by hand was recorded while the host could not be reached (ServerEntry.pendingRestart). */
  restartRecorded?: boolean;
}

export type HostAction =
  /** First contact after the app started: a live server is kept as it is (same pid), and wanted. */
  | { kind: "adopt"; modelId: string; status: ServerStatus }
  /** Wanted, not running, not crashed: start it. */
  | { kind: "start"; modelId: string }
  /** Not wanted, running: stop it. */
  | { kind: "stop"; modelId: string }
  /** Wanted, running, and a Restart by hand was recorded while the host could not be reached: make it (a stop, then a start). */
  | { kind: "restart"; modelId: string }
  /** We believed it running; the agent no longer has it (it died while no one watched): a crash. */
  | { kind: "lost"; modelId: string; pid: number | null }
  /** Stopped on the host (stop-metal-servers) after it was last asked to run: no longer wanted. */
  | { kind: "hostStopped"; modelId: string; at: string; reason: string | null }
  /** A restart is planned (recorded) and not under way here: scheduled before the app restarted, or its start lost. Schedule it again. */
  | { kind: "resumeRestart"; modelId: string; delayMs: number }
  /** A server the registry does not know: left alone. */
  | { kind: "unknown"; status: ServerStatus };

export interface PlanOptions {
  /** The first status from this host since the app started (adoption). */
  firstContact: boolean;
  now: number;
}

export function planHost(models: readonly ModelFacts[], statuses: readonly ServerStatus[], options: PlanOptions): HostAction[] {
  const byName = new Map(statuses.map((s) => [s.id, s]));
  const known = new Set(models.map((m) => m.name));
  const actions: HostAction[] = [];
  for (const m of models) {
    if (m.busy) continue;
    const s = byName.get(m.name);
    const alive = s !== undefined && ALIVE_STATES.has(s.state);
    // The restart recorded for it is made now, whatever else this pass would do with a live server. Not running
    // (anymore): what follows below (a start, the crash it was) makes a fresh process, which is the restart.
    if (m.restartRecorded && m.desired === "running" && alive && s.state !== "stopping") {
      actions.push({ kind: "restart", modelId: m.modelId });
      continue;
    }
    if (alive && options.firstContact) {
      actions.push({ kind: "adopt", modelId: m.modelId, status: s });
      continue;
    }
    if (m.desired === "running") {
      if (alive) continue;
      const hostStop = s?.hostStoppedAt ? Date.parse(s.hostStoppedAt) : NaN;
      if (Number.isFinite(hostStop) && (m.desiredAt === null || hostStop > m.desiredAt)) {
        actions.push({ kind: "hostStopped", modelId: m.modelId, at: s!.hostStoppedAt!, reason: s!.reason });
        continue;
      }
      if (m.observed === "failed") continue; // left alone until someone starts it
      if (m.observed === "exited") {
        // Planned and not under way in this app (not busy): scheduled before the app restarted, or its start was
        // issued and lost (the due time stays until the start's outcome is recorded), or it could not be issued.
        if (m.nextRestartAt !== null) actions.push({ kind: "resumeRestart", modelId: m.modelId, delayMs: Math.max(0, m.nextRestartAt - options.now) });
        continue; // exited without a restart planned: auto-restart is off
      }
      if (ALIVE_STATES.has(m.observed) && (s === undefined || s.state === "stopped")) {
        actions.push({ kind: "lost", modelId: m.modelId, pid: m.pid });
        continue;
      }
      actions.push({ kind: "start", modelId: m.modelId });
    } else if (alive && s.state !== "stopping") {
      actions.push({ kind: "stop", modelId: m.modelId });
    }
  }
  for (const s of statuses) if (!known.has(s.id) && ALIVE_STATES.has(s.state)) actions.push({ kind: "unknown", status: s });
  return actions;
}
