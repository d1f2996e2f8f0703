/**
 * Taking over the servers a previous agent process left running, from their
 * records, without restarting them. A record whose pid is gone or now
 * belongs to another process (different start time) is dropped and that
 * process is left alone; a leader that died unwatched has what it left in
 * its group reaped, and its run's last line written to its log (run-footer.ts).
 */
import { existsSync } from "node:fs";
import { AGENT_DEFAULTS } from "../env.ts";
import type { Logger } from "./logger.ts";
import { processInfo } from "./process-table.ts";
import type { RecordStore, ServerRecord } from "./records.ts";
import { endRunInLog } from "./run-footer.ts";
import { terminateGroup } from "./terminate.ts";

export type AdoptionResult = {
  adopted: string[];
  dropped: { id: string; reason: string }[];
};

export interface AdoptionDeps {
  records: RecordStore;
  log: Logger;
  /** Runs `fn` in the id's turn (the supervisor's per-server queue). */
  inTurn: (id: string, fn: () => Promise<void>) => Promise<void>;
  /** True when the id already has a live server here (nothing to adopt). */
  isRunning: (id: string) => boolean;
  /** Makes the server object for a checked record and takes the process over. */
  take: (rec: ServerRecord) => Promise<void>;
}

/**
 * The run of a record whose process ended while no agent watched it has no last line in its log yet: it gets
 * one now, saying so (its exit status is not known). Only into a log that is still there (a log renamed since
 * is not made again under the old name).
 */
function endUnwatchedRun(rec: ServerRecord, reason: string, deps: AdoptionDeps): void {
  if (existsSync(rec.logPath)) endRunInLog(deps.log, rec, "exited", null, `ended while no agent watched it: ${reason} (seen when an agent started; how it ended is not known)`);
}

async function dropStale(rec: ServerRecord, deps: AdoptionDeps, gone: boolean, reason: string): Promise<void> {
  endUnwatchedRun(rec, reason, deps);
  if (gone) {
    // The leader died while no agent watched; helpers it forked may live on in its group. terminateGroup
    // only signals members that started after the leader, and never a reused pid.
    const r = await terminateGroup({ pid: rec.pid, pgid: rec.pgid, startToken: rec.startToken, port: rec.port, bindAddress: rec.bindAddress }, AGENT_DEFAULTS.leftoverGraceMs, { portDeadlineMs: 0 }).catch(() => null);
    if (r && r.ended !== "gone" && r.ended !== "foreign") deps.log.warn("reaped leftovers of a server that died unwatched", { id: rec.id, ended: r.ended });
  }
  await deps.records.remove(rec.id);
}

export async function adoptRecords(deps: AdoptionDeps): Promise<AdoptionResult> {
  const { records, problems } = await deps.records.list();
  for (const p of problems) deps.log.warn("unreadable server record skipped", p);
  const result: AdoptionResult = { adopted: [], dropped: [] };
  await Promise.all(
    records.map((rec) =>
      deps.inTurn(rec.id, async () => {
        if (deps.isRunning(rec.id)) return;
        const info = await processInfo(rec.pid);
        if (!info || info.zombie || info.startToken !== rec.startToken) {
          const gone = !info || info.zombie;
          const reason = gone ? `pid ${rec.pid} is no longer running` : `pid ${rec.pid} now belongs to another process (start time differs); left alone`;
          result.dropped.push({ id: rec.id, reason });
          deps.log.info("dropping stale server record", { id: rec.id, pid: rec.pid, reason });
          await dropStale(rec, deps, gone, reason);
          return;
        }
        await deps.take(rec);
        result.adopted.push(rec.id);
      }),
    ),
  );
  return result;
}
