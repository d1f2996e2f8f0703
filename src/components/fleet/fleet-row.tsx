"use client";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { memo } from "react";
import { errorHeadline } from "synapse-host-agent/error-text";
import { errorMessage } from "~/components/api/errors";
import { useToast } from "~/components/ui/toaster";
import { useTRPC } from "~/trpc/client";
import { rowActions } from "~/shared/display-state";
import { hostUnreachable, lastKnownText, recordedForHost } from "~/shared/host-reach";
import { portText } from "./format";
import styles from "./fleet.module.css";
import type { StatusRow } from "./fleet-view";
import { GatewayUsage } from "./gateway-usage";
import { StateBadge } from "./state-badge";
import { StopCause } from "./stop-cause";
import { Uptime } from "./uptime";
import { useServerActions } from "./use-server-actions";
import { LoadProgressBar, type LoadProgressView } from "~/components/metrics/load-progress";
import { Sparkline } from "~/components/metrics/sparkline";
import { firstClickOnly } from "~/components/ui/first-click";

export const FleetRow = memo(function FleetRow({ row, spark, progress }: { row: StatusRow; spark?: (number | null)[] | undefined; progress?: LoadProgressView | undefined }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const { start, stop, restart, busy, patch, settle } = useServerActions(row.modelId, row.name);
  const setEnabled = useMutation(
    trpc.models.setEnabled.mutationOptions({
      onMutate: ({ enabled }) => patch((r) => ({ ...r, enabled })),
      onError: (err, { enabled }) => {
        patch((r) => ({ ...r, enabled: !enabled }));
        toast.push(`Could not ${enabled ? "enable" : "disable"} ${row.name}: ${errorMessage(err)}`, "bad");
      },
      onSettled: () => {
        void settle();
        void queryClient.invalidateQueries({ queryKey: trpc.models.list.queryKey() });
      },
    }),
  );

  const can = rowActions(row.state, row.desired);
  // The host's link is down: the state is the last one the app was told; uptime and tok/s are not known now.
  const unreachable = hostUnreachable(row.link);
  const nameId = `model-${row.modelId}`;

  return (
    <tr className={styles.row} data-testid="model-row" data-model-id={row.modelId} data-model-name={row.name} data-state={row.state} data-desired={row.desired}>
      <th scope="row" className={styles.name} id={nameId}>
        {/* The whole name, wrapped when long (fleet.module.css .name): at 1280 px this column is about 190 px. */}
        <Link href={`/models/${encodeURIComponent(row.modelId)}`}>{row.name}</Link>
        {row.gpuBackend ? <span className={`tag ${styles.gpu}`} title="GPU backend the server reported in its log">{row.gpuBackend}</span> : null}
      </th>
      <td className={styles.host} data-label="Host">
        <span className={styles.hostName}>
          {row.link.state && row.link.state !== "connected" ? (
            <span className={styles.linkDown} data-state={row.link.state} title={`link ${row.link.state}${row.link.error ? `: ${row.link.error}` : ""}`} role="img" aria-label={`link ${row.link.state}`} />
          ) : null}
          {row.host}
        </span>
      </td>
      <td className={`${styles.port} num mono`} data-label="Port" title={row.pendingPort !== null ? `The running server keeps port ${row.port}; its next start uses ${row.pendingPort}` : undefined}>
        {/* The running port on its line, the next start's under it: "3423 (3424 at restart)" on one line is
            wider than the column (66 px) and ran into State. The words stay for a screen reader and the title. */}
        {row.pendingPort !== null && row.pendingPort !== row.port ? (
          <>
            <span className={styles.portNow}>{row.port}</span>
            <span className={styles.portNext} data-testid="pending-port">
              <span aria-hidden="true">→ </span>
              <span className="visually-hidden">(</span>
              {row.pendingPort}
              <span className="visually-hidden"> at restart)</span>
            </span>
          </>
        ) : (
          portText(row)
        )}
      </td>
      <td className={styles.state} data-label="State">
        <StateBadge state={row.state} desired={row.desired} loadPolicy={row.loadPolicy} testId="state-badge" lastKnown={unreachable} />
        {unreachable ? (
          // The link's error whole: on hover, and for a screen reader and a narrow screen in the text itself (clamped).
          <span className={styles.unreachable} data-testid="host-unreachable" title={row.link.error ?? undefined}>
            {lastKnownText(row.host, recordedForHost(row))}
            {row.link.error ? <span className={styles.unreachableError}>{row.link.error}</span> : null}
          </span>
        ) : null}
        {/* Why it is not running ("stopped on request", "crashed" …): the state's cause, not an error. */}
        <StopCause state={row.state} cause={row.cause} className={styles.cause} besideBadge />
        <GatewayUsage row={row} />
      </td>
      <td className={styles.activity} data-label="Activity">
        {spark && row.state === "ready" && !unreachable ? <Sparkline values={spark} label={row.name} /> : null}
        {progress && row.state === "starting" ? <LoadProgressBar progress={progress} /> : null}
      </td>
      <td className={styles.uptime} data-label="Uptime">
        <Uptime state={row.state} startedAt={row.startedAt} frozenMs={unreachable ? row.uptimeMs : undefined} />
      </td>
      <td className={`${styles.restarts} num`} data-label="Restarts" data-testid="restarts">
        {row.restarts}
      </td>
      <td className={styles.error} data-label="Last error">
        {/* Real failures only (a crash, a failed start, an unreachable host); a stop's cause is under the state.
            One line: the reason and its log's telling line (errorHeadline); the whole text, log lines too, on hover. */}
        <span className={styles.errorText} title={row.lastError ?? undefined} data-testid="last-error">
          {errorHeadline(row.lastError)}
        </span>
      </td>
      <td className={styles.enabled} data-label="Enabled">
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            checked={row.enabled}
            disabled={setEnabled.isPending}
            onChange={(e) => setEnabled.mutate({ id: row.modelId, enabled: e.target.checked })}
            aria-describedby={nameId}
            data-testid="enabled-toggle"
          />
          <span className="visually-hidden">Enabled</span>
        </label>
      </td>
      <td className={styles.actions}>
        <div className={styles.actionGroup} role="group" aria-label={`Actions for ${row.name}`}>
          <button type="button" className="btn btn-sm" disabled={busy || !can.canStart} aria-busy={start.isPending} onClick={firstClickOnly(() => start.mutate({ id: row.modelId }))} aria-describedby={nameId}>
            Start
          </button>
          <button type="button" className="btn btn-sm" disabled={busy || !can.canStop} aria-busy={stop.isPending} onClick={firstClickOnly(() => stop.mutate({ id: row.modelId }))} aria-describedby={nameId}>
            Stop
          </button>
          <button type="button" className="btn btn-sm" disabled={busy || !can.canRestart} aria-busy={restart.isPending} onClick={firstClickOnly(() => restart.mutate({ id: row.modelId }))} aria-describedby={nameId}>
            Restart
          </button>
        </div>
      </td>
    </tr>
  );
});
