"use client";
/**
 * One model: its server's live state and GPU backend, start / stop /
 * restart, the settings form, the exact command line, and the live log.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useCallback, useLayoutEffect, useRef, useState } from "react";
import { errorMessage, httpStatusOf } from "~/components/api/errors";
import { rowActions } from "~/shared/display-state";
import type { StatusRow } from "~/components/fleet/fleet-view";
import { LlamaServerMissing, saysLlamaServerMissing } from "~/components/fleet/llama-missing";
import { StateBadge } from "~/components/fleet/state-badge";
import { hostUnreachable, lastKnownText, recordedForHost } from "~/shared/host-reach";
import { StopCause } from "~/components/fleet/stop-cause";
import { portText } from "~/components/fleet/format";
import { Uptime } from "~/components/fleet/uptime";
import { useServerActions } from "~/components/fleet/use-server-actions";
import { useToast } from "~/components/ui/toaster";
import { errorHeadline, LOG_TAIL_MARK } from "synapse-host-agent/error-text";
import { useTRPC } from "~/trpc/client";
import { CommandPreview } from "./command-preview";
import { warnsNotUsingMetal } from "./backend-badge";
import { GpuBadge, gpuFromLog } from "./gpu-badge";
import { LogView } from "./log-view";
import { ModelCharts } from "~/components/metrics/model-charts";
import { LoadProgressBar } from "~/components/metrics/load-progress";
import { ModelForm } from "./model-form";
import styles from "./model.module.css";
import { firstClickOnly } from "~/components/ui/first-click";

/** The form's identity: the model's version, so a newly stored version remounts it with the stored values. */
function formKey(m: { id: string; updatedAt?: unknown }): string {
  return m.updatedAt ? String(m.updatedAt) : m.id;
}

export function ModelPage({ id }: { id: string }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const router = useRouter();
  const model = useQuery(trpc.models.get.queryOptions({ id }));
  // The host's platform (its agent's hello) decides whether a CPU backend means "not using Metal".
  const hosts = useQuery(trpc.hosts.list.queryOptions());
  const status = useQuery({ ...trpc.servers.status.queryOptions(), select: (rows: StatusRow[]) => rows.find((r) => r.modelId === id) ?? null });
  const progress = useQuery({ ...trpc.metrics.loadProgress.queryOptions({ id }), enabled: status.data?.state === "starting", refetchInterval: 1000 });
  const [logGpu, setLogGpu] = useState<string | null>(null);
  const onLines = useCallback((lines: readonly string[]) => setLogGpu(gpuFromLog(lines)), []);
  const [confirmDelete, setConfirmDelete] = useState(false);
  /** The version of the model last saved from this page's form (see ModelForm's `saved`). */
  const [savedVersion, setSavedVersion] = useState<string | null>(null);

  const { start, stop, restart, busy } = useServerActions(id);
  const fail = (what: string) => (err: unknown) => toast.push(`${what} failed: ${errorMessage(err)}`, "bad");
  const remove = useMutation(
    trpc.models.delete.mutationOptions({
      onSuccess: () => {
        toast.push(`Deleted ${model.data?.name ?? "the model"}`, "ok");
        void queryClient.invalidateQueries();
        router.push("/");
      },
      onError: fail("Delete"),
    }),
  );

  if (model.isError) {
    const notFound = httpStatusOf(model.error) === 404 || (model.error.data as { code?: string } | undefined)?.code === "NOT_FOUND";
    return (
      <div className="empty">
        <h2>{notFound ? "No such model" : "Could not load the model"}</h2>
        <p>{notFound ? "It may have been deleted." : errorMessage(model.error)}</p>
        <div className="actions">
          <Link href="/" className="btn">
            Back to the fleet
          </Link>
        </div>
      </div>
    );
  }

  const m = model.data;
  const row = status.data ?? null;
  const state = row?.state ?? "stopped";
  const desired = row?.desired ?? "stopped";
  const can = rowActions(state, desired);
  const running = state !== "stopped" && state !== "failed" && state !== "exited";
  const gpu = row?.gpuBackend ?? logGpu;
  // Its host cannot be reached: the state is the last known (as on the fleet row).
  const unreachable = hostUnreachable(row?.link);
  const platform = hosts.data?.find((h) => h.id === m?.hostId)?.agent?.platform ?? null;

  return (
    <>
      <Link href="/" className={styles.back}>
        ← Fleet
      </Link>
      <div className={styles.head}>
        <h1 data-testid="model-name">{m?.name ?? "\u00a0"}</h1>
        <StateBadge state={state} desired={desired} loadPolicy={row?.loadPolicy ?? m?.loadPolicy} testId="state-badge" lastKnown={unreachable} />
        {unreachable && row ? (
          <span className="faint" data-testid="host-unreachable" title={row.link.error ?? undefined}>
            {lastKnownText(row.host, recordedForHost(row))}
          </span>
        ) : null}
        <StopCause state={state} cause={row?.cause} besideBadge />
        <GpuBadge backend={gpu} running={running} platform={platform} />
        <div className={styles.headActions}>
          {m ? (
            <Link href={`/playground?model=${encodeURIComponent(m.name)}`} className="btn" data-testid="try-it" title={m.enabled ? `Chat with ${m.name} in the playground` : "Disabled: enable it to chat with it"}>
              Try it
            </Link>
          ) : null}
          <button type="button" className="btn" disabled={!m || busy || !can.canStart} onClick={firstClickOnly(() => start.mutate({ id }))} aria-busy={start.isPending}>
            Start
          </button>
          <button type="button" className="btn" disabled={!m || busy || !can.canStop} onClick={firstClickOnly(() => stop.mutate({ id }))} aria-busy={stop.isPending}>
            Stop
          </button>
          <button type="button" className="btn" disabled={!m || busy || !can.canRestart} onClick={firstClickOnly(() => restart.mutate({ id }))} aria-busy={restart.isPending}>
            Restart
          </button>
        </div>
      </div>

      {saysLlamaServerMissing(row?.lastError) ? <LlamaServerMissing hostName={row?.host} detail={row?.lastError} /> : null}
      {warnsNotUsingMetal(gpu, platform, m?.host.linkKind) ? (
        <div className="notice" data-tone="warn" role="note">
          <div>
            <p>
              <strong>Not using Metal.</strong> The server reported the CPU backend. Check that the host&apos;s llama-server was built with Metal (<code>brew install llama.cpp</code>), that GPU layers is above 0, and look for <code>ggml_metal_device_init</code> in the log below.
            </p>
          </div>
        </div>
      ) : null}

      <section className="panel" aria-label="Server">
        <dl className={styles.facts}>
          <div>
            <dt>Host</dt>
            <dd>{m?.host.name ?? "—"}</dd>
          </div>
          <div>
            <dt>Port</dt>
            {/* While it runs, the port its process has; a port saved since applies at its next start (the status row's pendingPort, listening-port.ts). */}
            <dd className="mono" data-testid="model-port">
              {row ? portText(row) : m ? portText({ port: m.port }) : "—"}
            </dd>
          </div>
          <div>
            <dt>PID</dt>
            <dd className="mono">{row?.pid ?? "—"}</dd>
          </div>
          <div>
            <dt>Uptime</dt>
            <dd>
              <Uptime state={state} startedAt={row?.startedAt} frozenMs={unreachable ? row?.uptimeMs : undefined} />
            </dd>
          </div>
          <div>
            <dt>Restarts</dt>
            <dd>{row?.restarts ?? 0}</dd>
          </div>
          <div>
            <dt>Model</dt>
            <dd>{[m?.architecture, m?.quantization].filter(Boolean).join(" · ") || "—"}</dd>
          </div>
          <div>
            <dt>History</dt>
            <dd>
              <Link href={`/activity?model=${encodeURIComponent(id)}`} data-testid="model-activity">
                Activity of this model
              </Link>
            </dd>
          </div>
        </dl>
        {state === "starting" && progress.data ? <LoadProgressBar progress={progress.data} /> : null}
        <div className={styles.lastError} aria-live="polite">
          {row?.lastError ? (
            <>
              <span className="faint" style={{ fontSize: "0.72rem", textTransform: "uppercase", letterSpacing: "0.05em" }}>
                Last error
              </span>
              {/* The one line that says what went wrong (llama-server's own, when its log tail has it) first: the tail below starts with the run's long header and warnings. */}
              <p className={styles.lastErrorHeadline} data-testid="last-error-headline">
                {errorHeadline(row.lastError)}
              </p>
              <LastErrorLines text={row.lastError} />
            </>
          ) : null}
        </div>
      </section>

      <ModelCharts modelId={id} />

      <div className="grid-2">
        <section className="panel" aria-labelledby="settings-title">
          <h2 id="settings-title">Settings</h2>
          {m ? (
            // A new version of the model (saved here or elsewhere) remounts the form with the stored values; "Saved." stays when it is the version saved here.
            <ModelForm key={formKey(m)} model={m} saved={savedVersion === formKey(m)} onSaved={(s) => setSavedVersion(formKey({ id: s.id, updatedAt: s.updatedAt }))} />
          ) : (
            <div className="skeleton" style={{ height: 480 }} />
          )}
          {m && running ? <p className="muted" style={{ fontSize: "0.82rem", marginTop: 10 }}>A running server keeps its settings until it is restarted.</p> : null}
        </section>
        <div>
          <CommandPreview modelId={id} pid={row?.pid ?? null} />
          <section className={`panel ${styles.danger}`} aria-labelledby="danger-title">
            <h2 id="danger-title">Delete</h2>
            <p className="muted" style={{ fontSize: "0.85rem" }}>
              Removes the model from the registry (the GGUF file stays on the host). Stop its server first.
            </p>
            {confirmDelete ? (
              <div className="form-actions" style={{ marginTop: 0 }}>
                <button type="button" className="btn btn-danger" onClick={() => remove.mutate({ id })} disabled={remove.isPending} aria-busy={remove.isPending}>
                  Yes, delete {m?.name}
                </button>
                <button type="button" className="btn" onClick={() => setConfirmDelete(false)}>
                  Cancel
                </button>
              </div>
            ) : (
              <button type="button" className="btn btn-danger" onClick={() => setConfirmDelete(true)} disabled={!m}>
                Delete model…
              </button>
            )}
          </section>
        </div>
      </div>

      <LogView modelId={id} hasRun={!!row && (state !== "stopped" || row.startedAt !== null || row.stoppedAt !== null)} onLines={onLines} />
    </>
  );
}

/**
 * Below a failure's one-line headline: the server's last log lines that came with it (the text after
 * LOG_TAIL_MARK), scrolled to their end, where a failed load's errors are; the whole text when it carries
 * no lines (the headline says it all then, so nothing is shown).
 */
function LastErrorLines({ text }: { text: string }) {
  const box = useRef<HTMLPreElement>(null);
  const at = text.indexOf(`${LOG_TAIL_MARK}\n`);
  const lines = at === -1 ? null : text.slice(at + LOG_TAIL_MARK.length + 1);
  useLayoutEffect(() => {
    if (box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines]);
  if (lines === null) return text.includes("\n") ? <pre data-testid="last-error">{text}</pre> : null;
  return (
    <>
      <span className="faint" style={{ fontSize: "0.72rem" }}>
        its last log lines
      </span>
      <pre ref={box} data-testid="last-error">
        {lines}
      </pre>
    </>
  );
}
