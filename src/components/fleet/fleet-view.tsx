"use client";
/**
 * The fleet page: every model's server, live. START ALL ENABLED / STOP ALL
 * above the table; each row shows queued → loading → ready (or the failure
 * and its reason) as the events arrive, with no reload.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useMemo, useState } from "react";
import { ALIVE_STATES } from "synapse-host-agent/server-states";
import { errorMessage } from "~/components/api/errors";
import type { RouterOutputs } from "~/components/api/types";
import { useLive } from "~/components/live/live-provider";
import { useToast } from "~/components/ui/toaster";
import { useTRPC } from "~/trpc/client";
import { EmptyFleet } from "./empty-fleet";
import { fleetSummary, startAllIds, stopAllDisabledReason, type FleetRun } from "./fleet-summary";
import { FleetRow } from "./fleet-row";
import styles from "./fleet.module.css";
import { LlamaServerMissing, saysLlamaServerMissing } from "./llama-missing";
import { MemoryBars } from "./memory-bars";
import { stopPendingNote } from "./stop-note";
import { firstClickOnly } from "~/components/ui/first-click";
import { restartPlanned } from "~/shared/restart-text";

export type StatusRow = RouterOutputs["servers"]["status"][number];

/**
 * The gateway's counters (in flight, idle countdown) change without fleet
 * events: poll while a row has requests in flight or is a loaded on-demand
 * model (its countdown starts when its last request ends).
 */
function gatewayCounting(r: StatusRow): boolean {
  return r.inFlight > 0 || r.idleUnloadAt !== null || (r.loadPolicy === "on-demand" && (r.state === "ready" || r.state === "unhealthy"));
}

const ACTIVE = ALIVE_STATES;

export function FleetView() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const { connection } = useLive();
  // While live updates are paused, poll so the table does not go stale. Live events say state changes, not a
  // request's coming or going: while a model runs, a request may come at any time, so its "in flight" and "used"
  // are read every 5 s (every 2 s while the gateway counts something).
  const status = useQuery({
    ...trpc.servers.status.queryOptions(),
    refetchInterval: (q) => (connection !== "live" ? 5000 : q.state.data?.some(gatewayCounting) ? 2000 : q.state.data?.some((r) => r.state === "ready" || r.state === "unhealthy") ? 5000 : false),
  });
  const rows = status.data;
  // Sparklines and load progress: every 5 s, every second while a model loads.
  const figures = useQuery({ ...trpc.metrics.fleet.queryOptions(), refetchInterval: (q) => (q.state.data && Object.keys(q.state.data.progress).length > 0 ? 1000 : (q.state.data?.intervalMs ?? 5000)) });
  const statusKey = trpc.servers.status.queryKey();
  /** Models the last START ALL ENABLED covered: the progress line follows them. */
  const [run, setRun] = useState<FleetRun | null>(null);

  const patchRows = (fn: (r: StatusRow) => StatusRow) => queryClient.setQueryData(statusKey, (old) => old?.map(fn));

  const startAll = useMutation(
    trpc.servers.startAll.mutationOptions({
      onMutate: async () => {
        await queryClient.cancelQueries({ queryKey: statusKey });
        // The models it starts: enabled, load policy always (the gateway starts on-demand ones).
        const ids = startAllIds(rows ?? []);
        setRun({ kind: "start", ids });
        // Queued at once: the click shows on every enabled row before the server answers.
        // Not one waiting for its planned restart after a crash: start-all leaves it to that restart (its countdown stays).
        patchRows((r) => (ids.includes(r.modelId) && !ACTIVE.has(r.state) && !restartPlanned(r) ? { ...r, desired: "running", state: "stopped", lastError: null } : r));
      },
      onSuccess: (results) => {
        // Refused for memory: the numbers stay on screen until dismissed.
        for (const r of results) if (r.memory?.verdict === "refused" && r.error) toast.push(`Not started: ${r.error}`, "bad");
      },
      onError: (err) => toast.push(`Start all failed: ${errorMessage(err)}`, "bad"),
      onSettled: () => {
        void queryClient.invalidateQueries({ queryKey: trpc.servers.memory.queryKey() });
        return queryClient.invalidateQueries({ queryKey: statusKey });
      },
    }),
  );
  const stopAll = useMutation(
    trpc.servers.stopAll.mutationOptions({
      onMutate: async () => {
        await queryClient.cancelQueries({ queryKey: statusKey });
        setRun({ kind: "stop", ids: (rows ?? []).filter((r) => r.state !== "stopped" || r.desired === "running").map((r) => r.modelId) });
        patchRows((r) => ({ ...r, desired: "stopped" }));
      },
      // Models on a host that cannot be reached now: their stops are recorded and made once it is back.
      onSuccess: (results) => {
        const pending = results.filter((r) => r.stopPending);
        if (pending.length === 1) toast.push(stopPendingNote(pending[0]!)!, "info");
        else if (pending.length > 1) toast.push(`stops recorded, not yet made: ${pending.map((r) => `${r.name} (host ${r.stopPending!.host})`).join(", ")}; each is stopped when its host is reachable again`, "info");
      },
      onError: (err) => toast.push(`Stop all failed: ${errorMessage(err)}`, "bad"),
      onSettled: () => queryClient.invalidateQueries({ queryKey: statusKey }),
    }),
  );

  const enabledCount = rows?.filter((r) => r.enabled).length ?? 0;
  // Greyed out with nothing to stop: the reason is its tooltip and its accessible description.
  const stopAllReason = stopAllDisabledReason(rows);
  const stopAllReasonId = useId();
  const missing = rows?.find((r) => saysLlamaServerMissing(r.lastError));

  return (
    <>
      <div className="page-head">
        <h1>Fleet</h1>
        <div className="actions">
          <button
            type="button"
            className="btn btn-primary btn-lg"
            data-testid="start-all"
            onClick={firstClickOnly(() => startAll.mutate({ wait: false }))}
            disabled={!rows || enabledCount === 0 || startAll.isPending}
            aria-busy={startAll.isPending}
            title={enabledCount === 0 ? "No model is enabled: turn on “Enabled” for the models to start" : undefined}
          >
            <span className="spin" data-on={startAll.isPending} aria-hidden="true" />
            START ALL ENABLED
          </button>
          <button
            type="button"
            className="btn btn-danger btn-lg"
            data-testid="stop-all"
            onClick={firstClickOnly(() => stopAll.mutate())}
            disabled={stopAllReason !== null || stopAll.isPending}
            aria-busy={stopAll.isPending}
            title={stopAllReason ?? undefined}
            aria-describedby={stopAllReason ? stopAllReasonId : undefined}
          >
            <span className="spin" data-on={stopAll.isPending} aria-hidden="true" />
            STOP ALL
          </button>
          {stopAllReason ? (
            <span id={stopAllReasonId} className="visually-hidden" data-testid="stop-all-reason">
              {stopAllReason}
            </span>
          ) : null}
        </div>
      </div>

      {missing ? <LlamaServerMissing hostName={missing.host} detail={missing.lastError} /> : null}

      <MemoryBars />

      {status.isError && !rows ? (
        <div className="notice" data-tone="bad" role="alert">
          <div>
            <p>
              <strong>Could not load the fleet.</strong> {errorMessage(status.error)}
            </p>
            <button type="button" className="btn btn-sm" onClick={() => status.refetch()}>
              Try again
            </button>
          </div>
        </div>
      ) : null}

      {rows && rows.length === 0 ? (
        <EmptyFleet />
      ) : (
        <>
          <FleetSummaryLine rows={rows} run={run} />
          <FleetTable rows={rows} figures={figures.data} />
        </>
      )}
    </>
  );
}

/** One line above the table, always present (no jump): the start-all/stop-all progress, or the fleet's totals (fleet-summary.ts). */
function FleetSummaryLine({ rows, run }: { rows: StatusRow[] | undefined; run: FleetRun | null }) {
  const text = useMemo(() => fleetSummary(rows, run), [rows, run]);
  return (
    <p className={styles.summary} role="status" aria-live="polite" data-testid="fleet-summary">
      {text}
    </p>
  );
}

type FleetFigures = RouterOutputs["metrics"]["fleet"];

function FleetTable({ rows, figures }: { rows: StatusRow[] | undefined; figures: FleetFigures | undefined }) {
  return (
    <div className={styles.tableWrap}>
      <table className={styles.table} data-testid="model-list" aria-busy={!rows}>
        <caption className="visually-hidden">Models and the state of their servers</caption>
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Host</th>
            <th scope="col">Port</th>
            <th scope="col">State</th>
            <th scope="col" title="Generated tokens per second, last 5 minutes; a loading model's progress">
              Activity
            </th>
            <th scope="col">Uptime</th>
            <th scope="col">Restarts</th>
            <th scope="col">Last error</th>
            <th scope="col">Enabled</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows
            ? rows.map((r) => <FleetRow key={r.modelId} row={r} spark={figures?.sparklines[r.modelId]} progress={figures?.progress[r.modelId]} />)
            : [0, 1, 2].map((i) => (
                <tr key={i} className={styles.skeletonRow} aria-hidden="true">
                  <td colSpan={10}>
                    <div className="skeleton" style={{ height: 20 }} />
                  </td>
                </tr>
              ))}
        </tbody>
      </table>
    </div>
  );
}
