/**
 * Restarts after crashes: the restart policy's decision (restart-policy.ts)
 * carried out, with the restart timer kept on the model's entry.
 */
import { getSettings } from "~/server/services/registry/settings";
import type { FleetContext } from "./context";
import type { EventInput } from "./events";
import type { NoteInLog } from "./log-note";
import type { StateData } from "./state-sql";
import { decideAfterCrash, formatRecentCrashes, parseRecentCrashes, restartCountText } from "./restart-policy";
import type { ServerEntry } from "./server-entry";

/**
 * What the crash itself left to record (the `exited` state, or a restart's
 * `failed` start), written in the same transaction as the decision that
 * follows it: a reader never sees a restart that could not start as
 * `failed` while restarts remain, nor an exit without its planned restart.
 */
export interface CrashRecord {
  data: StateData;
  event: Omit<EventInput, "modelId" | "hostId">;
  /** Sets the entry's fields as the record says, when it is written. */
  apply?: () => void;
}

export interface Restarts {
  /**
   * A crash (agent `exited`, a restart that could not start, a server gone
   * unwatched): restart with backoff, or give up (`failed`). `record`, when
   * given, is written together with that decision. While the app shuts down
   * leaving its servers running, the decision is recorded (its due time, for
   * the next start of the app to resume) and no restart is made; a shutdown
   * that stops them records the crash only. Runs inside the model's record chain.
   */
  afterCrash(e: ServerEntry, why: string, record?: CrashRecord): Promise<void>;
  /** Schedules a restart in `delayMs` (replacing any scheduled one); `dueAtMs`: its due time as recorded (epoch ms; default now + delayMs). */
  schedule(e: ServerEntry, delayMs: number, dueAtMs?: number): void;
  /**
   * A restart's start that could not reach the model's host (link down, no answer): not a crash of the model,
   * so the policy's count is left alone; the restart is planned again, UNREACHABLE_RETRY_MS on (its due time
   * recorded, so the reconcile loop resumes it once the host is back, and the gateway answers 503
   * model_restarting meanwhile), with `error` as its last error. The event says so once per outage (the
   * first of equal errors in a row). Runs inside the model's record chain.
   */
  afterUnreachable(e: ServerEntry, error: string): Promise<void>;
}

/** How long after a restart that could not reach its host it is tried again (ms), unless the host is back sooner. */
export const UNREACHABLE_RETRY_MS = 5_000;

/**
 * `restartNow`: issues the restart's start through the host's queue. `noteInLog`: writes the decision into the
 * server's log on its host as a line of its own (fleet.ts: agents with log-note), sent before the restart it
 * announces; it never throws and is not waited for.
 */
export function createRestarts(ctx: FleetContext, restartNow: (e: ServerEntry) => Promise<void>, noteInLog: NoteInLog = () => undefined): Restarts {
  const { db, events, table, policy, now } = ctx;

  function schedule(e: ServerEntry, delayMs: number, dueAtMs: number = now() + delayMs): void {
    e.clearRestart();
    if (ctx.closing) return;
    e.restartDueAtMs = dueAtMs;
    e.restartTimer = setTimeout(() => {
      e.restartTimer = null;
      if (ctx.closing) return;
      void restartNow(e).catch((err: unknown) => ctx.log.warn("scheduled restart could not be issued", { modelId: e.modelId, error: err }));
    }, delayMs);
    e.restartTimer.unref();
  }

  async function afterCrash(e: ServerEntry, why: string, record?: CrashRecord): Promise<void> {
    // The record's append and the decision's are made in one synchronous run, so the event bus commits
    // them in one transaction (events.ts); the row is read before either.
    const writeRecord = (): Promise<void> => {
      if (!record) return Promise.resolve();
      record.apply?.();
      return table.writeState(e, record.data, record.event);
    };
    // While the app shuts down leaving its servers running (ctx.closing) the decision is still recorded, not
    // made: the next app resumes the planned restart (reconciler.ts). A shutdown that stops them plans none.
    if (table.closed || (ctx.closing && ctx.stoppingServers)) return writeRecord();
    const row = await db.serverState.findUnique({ where: { modelId: e.modelId } });
    if (!row || row.desired !== "running") return writeRecord();
    const settings = await getSettings(db);
    if (!settings.autoRestart) {
      await Promise.all([writeRecord(), events.append({ kind: "action", modelId: e.modelId, hostId: e.hostId, message: `${e.name}: not restarted (auto-restart is off)` })]);
      noteInLog(e, "not restarted: auto-restart is off in the app's settings");
      return;
    }
    const lastError = record?.data.lastError ?? row.lastError;
    const decision = decideAfterCrash(parseRecentCrashes(row.recentCrashes), now(), policy);
    if (decision.action === "restart") {
      const due = new Date(now() + decision.delayMs);
      const recorded = writeRecord();
      // A restart that could not start (failedRecord: no process, "cannot start …") left "failed": it is a crash
      // awaiting its restart, not given up. One that exited while loading is read as exited already (decideReport's
      // restartStarting).
      const pending = e.state === "failed" ? { observed: "exited" } : {};
      if (e.state === "failed") e.state = "exited";
      const when = ctx.closing ? "to be restarted by the app's next start (it is shutting down)" : `restarting in ${(decision.delayMs / 1000).toFixed(1)} s`;
      const text = `${why}; ${when} (${restartCountText(decision.crashesInWindow, policy)})`;
      await Promise.all([
        recorded,
        table.writeState(
          e,
          { recentCrashes: formatRecentCrashes(decision.recentCrashes), nextRestartAt: due, ...pending },
          { kind: "action", message: `${e.name}: ${text}`, data: { delayMs: decision.delayMs, crashes: decision.crashesInWindow } },
        ),
      ]);
      // Sent before the restart is: on the host the note comes first in the log, then the new run.
      noteInLog(e, text);
      schedule(e, decision.delayMs, due.getTime());
    } else {
      const recorded = writeRecord();
      e.clearRestart();
      e.state = "failed";
      e.cause = "crash";
      await Promise.all([
        recorded,
        table.writeState(
          e,
          { observed: "failed", pid: null, cause: "crash", recentCrashes: formatRecentCrashes(decision.recentCrashes), nextRestartAt: null, lastError: `${decision.reason}; last: ${lastError ?? why}`, stopIncomplete: null },
          { kind: "state", state: "failed", message: `${e.name}: failed (${decision.reason})`, data: { crashes: decision.crashesInWindow, cause: "crash" } },
        ),
      ]);
      noteInLog(e, `failed: ${decision.reason}`);
    }
  }

  async function afterUnreachable(e: ServerEntry, error: string): Promise<void> {
    if (ctx.closing) return;
    const due = new Date(now() + UNREACHABLE_RETRY_MS);
    const first = e.restartUnreachable !== error;
    e.restartUnreachable = error;
    await table.writeState(
      e,
      { lastError: error, nextRestartAt: due },
      first ? { kind: "action", message: `${e.name}: its restart could not reach its host (${error}); trying again every ${UNREACHABLE_RETRY_MS / 1000} s, and once the host is back`, data: { delayMs: UNREACHABLE_RETRY_MS } } : undefined,
    );
    schedule(e, UNREACHABLE_RETRY_MS, due.getTime());
  }

  return { afterCrash, schedule, afterUnreachable };
}
