/**
 * Applying what agents report: each status (an event, a call's result, a
 * `status` answer) goes through decideReport (report-decision.ts) and its
 * decision is carried out here: the entry updated, the row and its event
 * written, a host stop honoured, a crash handed to the restart policy. Log
 * lines are passed on to the event bus, and the GPU backend they name kept.
 */
import type { AgentEvent, ServerStatus } from "synapse-host-agent/protocol";
import type { FleetContext } from "./context";
import { gpuBackendFromLogLine, mergeGpuBackend } from "./gpu-backend";
import { decideReport } from "./report-decision";
import type { Restarts } from "./restarts";
import type { ServerEntry } from "./server-entry";

export interface ReportApplier {
  /**
   * Records a status from the agent of `hostId`. `modelId` when the caller
   * knows it (otherwise looked up by the server's name). Resolves once
   * recorded (in the model's write order). `crash`: the status ends a
   * restart that could not start, a crash for the restart policy (why),
   * recorded together with its decision.
   */
  observe(hostId: string, status: ServerStatus, source: "event" | "snapshot", modelId?: string, crash?: string): Promise<void>;
  onAgentEvent(hostId: string, e: AgentEvent): void;
}

export function createReportApplier(ctx: FleetContext, restarts: Restarts): ReportApplier {
  const { db, table, events, log } = ctx;

  async function record(e: ServerEntry, status: ServerStatus, source: "event" | "snapshot", appStopPending: boolean, crash: string | undefined): Promise<void> {
    if (table.closed) return;
    // What the user wants matters only to tell a stop made on the host from ours.
    const desired = status.state === "stopped" && source === "event" && e.alive ? await readDesired(e.modelId) : null;
    // A restart's start in flight (its live reports), or its outcome handed here with the crash it ends in.
    const restartStarting = crash !== undefined || (e.restartStartSeq !== null && e.op?.kind === "start" && e.op.seq === e.restartStartSeq);
    const d = decideReport({ ...e.snapshot(), name: e.name }, { source, status, appStopPending: appStopPending || e.stopsInFlight > 0 }, { now: ctx.now(), desired, closing: ctx.closing, restartStarting });
    if (d.kind === "ignore") {
      if (crash !== undefined) await restarts.afterCrash(e, crash);
      return;
    }
    const c = d.change;
    e.state = c.state;
    e.pid = c.pid;
    e.cause = c.cause;
    if (c.startedAt !== undefined) e.startedAt = c.startedAt;
    if (c.backend !== undefined) e.backend = c.backend;
    if (c.ended !== undefined) e.ended = c.ended;
    if (d.then.some((f) => f.kind === "host-stop")) e.clearRestart();
    const why = crash ?? d.then.find((f) => f.kind === "crash")?.why;
    // A crash: its state and the restart policy's decision are written together.
    if (why !== undefined) await restarts.afterCrash(e, why, { data: d.data, event: { kind: "state", ...d.event } });
    else await table.writeState(e, d.data, { kind: "state", ...d.event });
  }

  async function readDesired(modelId: string): Promise<"running" | "stopped"> {
    const row = await db.serverState.findUnique({ where: { modelId }, select: { desired: true } });
    return row?.desired === "running" ? "running" : "stopped";
  }

  function observe(hostId: string, status: ServerStatus, source: "event" | "snapshot", modelId?: string, crash?: string): Promise<void> {
    // Taken now, before the model's write chain: the answer to our stop may settle before this is recorded.
    const known = modelId ?? table.knownModelId(hostId, status.id);
    const stopPendingNow = known !== undefined && (table.get(known)?.stopsInFlight ?? 0) > 0;
    return (async () => {
      const id = known ?? (await table.modelIdFor(hostId, status.id));
      if (!id) return;
      const e = table.remember({ id, hostId, name: status.id });
      await table.withModel(e, () => record(e, status, source, stopPendingNow, crash));
    })();
  }

  function onLogLine(hostId: string, id: string, line: string, at: string, seq: number | undefined): void {
    const publish = (modelId: string) => {
      events.logLine(modelId, hostId, line, at, seq);
      const seen = gpuBackendFromLogLine(line);
      if (!seen) return;
      const e = table.get(modelId);
      if (!e) return;
      const merged = mergeGpuBackend(e.backend, seen);
      if (merged === e.backend) return;
      e.backend = merged;
      void table.withModel(e, () => table.writeState(e, { gpuBackend: merged }));
    };
    const known = table.knownModelId(hostId, id);
    if (known) publish(known);
    else void table.modelIdFor(hostId, id).then((m) => m && publish(m), () => undefined);
  }

  function onAgentEvent(hostId: string, e: AgentEvent): void {
    if (table.closed) return;
    if (e.kind === "state") void observe(hostId, e.status, "event").catch((err: unknown) => log.error("agent event not recorded", { hostId, error: err }));
    else onLogLine(hostId, e.id, e.line, e.at, e.seq);
  }

  return { observe, onAgentEvent };
}
