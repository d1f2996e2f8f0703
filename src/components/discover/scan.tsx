"use client";
/**
 * Scan a host's model folders for .gguf files. The API adds every new file
 * to the registry at once, disabled, with what its GGUF header says, and
 * reports the files the registry already has. The table lists both with
 * that metadata and each one's status (new; registered and enabled;
 * registered but disabled) and lets the user pick which to enable (START ALL
 * ENABLED starts those) and which to remove again: a registered, disabled
 * model is enabled the same way as a new one (`models.setEnabled` by its id,
 * no new row). The banner above the table says what happened last: the
 * scan's report, then each enable or remove by name. A note under a name
 * says what the name alone does not (a
 * split set, a revision other than main's). Files it skipped or could not
 * read (incomplete split sets, broken links) are listed with the reason.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useId, useMemo, useState } from "react";
import { errorMessage } from "~/components/api/errors";
import type { RouterOutputs } from "~/components/api/types";
import { formatBytes, formatParams } from "~/components/fleet/format";
import { SelectField } from "~/components/form/fields";
import { useToast } from "~/components/ui/toaster";
import { useTRPC } from "~/trpc/client";
import { appliedText } from "./applied-text";
import styles from "./discover.module.css";

type Report = RouterOutputs["models"]["discover"];
type Model = RouterOutputs["models"]["list"][number];
/** A row's status, from the registry as it is now: `new` (added by this scan, still disabled), `enabled`, `disabled` (registered before, disabled), `removed`. */
type RowStatus = "new" | "enabled" | "disabled" | "removed";

const STATUS_TEXT: Record<RowStatus, string> = { new: "new", enabled: "enabled", disabled: "registered, disabled", removed: "removed" };

function rowStatus(origin: "new" | "registered", model: Model | undefined): RowStatus {
  if (!model) return "removed";
  if (model.enabled) return "enabled";
  return origin === "new" ? "new" : "disabled";
}

export function Scan() {
  const id = useId().replace(/:/g, "");
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const hosts = useQuery(trpc.hosts.list.queryOptions());
  const models = useQuery(trpc.models.list.queryOptions());
  const [hostId, setHostId] = useState("");
  const [report, setReport] = useState<Report | null>(null);
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [working, setWorking] = useState(false);
  /** The banner after an enable or remove (applied-text.ts); null: the scan's report is the last thing that happened. */
  const [applied, setApplied] = useState<string | null>(null);
  const effectiveHost = hostId || hosts.data?.[0]?.id || "";
  // What its agent scans (its hello's model roots; on this machine SYNAPSE_MODEL_ROOTS and the host's models folder).
  const roots = hosts.data?.find((h) => h.id === effectiveHost)?.agent?.modelRoots ?? null;

  /** Refetches the registry's list (resolves once it is fresh) and, not waited for, the servers' status. */
  const refresh = async () => {
    void queryClient.invalidateQueries({ queryKey: trpc.servers.status.queryKey() });
    await queryClient.invalidateQueries({ queryKey: trpc.models.pathKey() });
  };
  const scan = useMutation(
    trpc.models.discover.mutationOptions({
      onSuccess: async (r) => {
        // Show the report only with the registry's fresh list: before the refetch the new
        // models are missing from it and their rows would read "removed".
        await refresh();
        setReport(r);
        setApplied(null);
        setPicked(new Set(r.added.map((a) => a.id)));
      },
    }),
  );
  const setEnabled = useMutation(trpc.models.setEnabled.mutationOptions());
  const remove = useMutation(trpc.models.delete.mutationOptions());

  // What the registry now holds for each file found (its GGUF metadata, whether it is enabled, still there).
  const byId = useMemo(() => new Map((models.data ?? []).map((m) => [m.id, m])), [models.data]);
  const rows = [...(report?.added ?? []).map((a) => ({ ...a, origin: "new" as const })), ...(report?.registered ?? []).map((r) => ({ ...r, origin: "registered" as const }))].map((r) => {
    const model = byId.get(r.id);
    return { ...r, model, status: rowStatus(r.origin, model) };
  });
  const present = rows.filter((r) => r.model);
  const disabledRegistered = rows.filter((r) => r.status === "disabled").length;
  const pickCount = present.filter((a) => picked.has(a.id)).length;
  // The rows that can be enabled (new or registered alike); "Enable N selected" enables the picked ones of them.
  const enableable = present.filter((a) => !a.model?.enabled);
  const toEnable = enableable.filter((a) => picked.has(a.id));

  async function apply(action: "enable" | "remove") {
    setWorking(true);
    // Enabling skips what is enabled already; removing takes every picked row.
    const ids = (action === "enable" ? toEnable : present.filter((a) => picked.has(a.id))).map((a) => a.id);
    const nameOf = (modelId: string) => byId.get(modelId)?.name ?? modelId;
    const doneNames: string[] = [];
    const failed: string[] = [];
    for (const modelId of ids) {
      try {
        if (action === "enable") await setEnabled.mutateAsync({ id: modelId, enabled: true });
        else await remove.mutateAsync({ id: modelId });
        doneNames.push(nameOf(modelId));
      } catch (err) {
        failed.push(`${nameOf(modelId)}: ${errorMessage(err)}`);
      }
    }
    // The rows, the button's count and the banner change together: after the registry's fresh list.
    await refresh();
    setWorking(false);
    setApplied(appliedText(action, doneNames, failed));
    const done = doneNames.length;
    if (done) toast.push(action === "enable" ? `Enabled ${done} model${done === 1 ? "" : "s"}` : `Removed ${done} model${done === 1 ? "" : "s"}`, "ok");
    for (const f of failed) toast.push(f, "bad");
    if (action === "remove") setPicked(new Set());
  }

  const allPicked = present.length > 0 && present.every((a) => picked.has(a.id));
  const toggle = (modelId: string, on: boolean) =>
    setPicked((cur) => {
      const next = new Set(cur);
      if (on) next.add(modelId);
      else next.delete(modelId);
      return next;
    });

  return (
    <section className="panel" aria-labelledby={`${id}-title`} data-testid="discover">
      <h2 id={`${id}-title`}>Scan a host for models</h2>
      <p className="muted" style={{ fontSize: "0.88rem" }}>
        Finds the <code>.gguf</code> files in the host&apos;s model folders (<span className="mono" data-testid="scan-roots">{roots && roots.length > 0 ? roots.join(", ") : "not known until the host's agent answers"}</span>), reads each file&apos;s header and adds the new ones to the registry, disabled; the ones it already has are listed with their status, and a disabled one can be enabled here too.
      </p>
      <div className={styles.scanBar}>
        <SelectField id={`${id}-host`} label="Host" value={effectiveHost} onChange={setHostId} options={(hosts.data ?? []).map((h) => ({ value: h.id, label: h.name }))} />
        <button type="button" className="btn btn-primary" onClick={() => scan.mutate({ hostId: effectiveHost || undefined })} disabled={scan.isPending || !hosts.data} aria-busy={scan.isPending} data-testid="scan">
          <span className="spin" data-on={scan.isPending} aria-hidden="true" />
          Scan for models
        </button>
      </div>

      <div aria-live="polite">
        {scan.isError ? (
          <div className="notice" data-tone="bad" role="alert" style={{ marginTop: 14 }}>
            <div>Scan failed: {errorMessage(scan.error)}</div>
          </div>
        ) : null}
        {report && applied !== null ? (
          <p style={{ marginTop: 14 }} data-testid="scan-summary">
            {applied}
          </p>
        ) : report ? (
          <p style={{ marginTop: 14 }} data-testid="scan-summary">
            {report.added.length === 0 ? "No new model files." : `Added ${report.added.length} new model${report.added.length === 1 ? "" : "s"} (disabled).`}
            {report.registered.length ? ` ${report.registered.length} already registered${disabledRegistered ? ` (${disabledRegistered} disabled)` : ""}.` : ""}
            {report.skipped.length ? ` ${report.skipped.length} skipped.` : ""}
            {report.errors.length ? ` ${report.errors.length} could not be read.` : ""}
          </p>
        ) : null}
      </div>

      {rows.length > 0 ? (
        <div className={styles.results}>
          <div className="table-wrap">
            <table className={`data ${styles.resultTable}`} data-testid="scan-results">
              <caption className="visually-hidden">Model files the scan found, new or already registered, with their status and GGUF metadata</caption>
              <thead>
                <tr>
                  <th scope="col">
                    <label className={styles.selectAll}>
                      <input type="checkbox" checked={allPicked} disabled={present.length === 0} onChange={(e) => setPicked(e.target.checked ? new Set(present.map((a) => a.id)) : new Set())} />
                      <span className="visually-hidden">Pick every listed model</span>
                    </label>
                  </th>
                  <th scope="col">Name</th>
                  <th scope="col">Status</th>
                  <th scope="col">Architecture</th>
                  <th scope="col">Params</th>
                  <th scope="col">Quant</th>
                  <th scope="col">Context</th>
                  <th scope="col">Size</th>
                  <th scope="col">Port</th>
                  <th scope="col">File</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((a) => {
                  const m = a.model;
                  const rid = `${id}-${a.id}`;
                  return (
                    <tr key={a.id} data-testid="scan-row" data-model-name={a.name} data-status={a.status}>
                      <td>
                        <input type="checkbox" checked={picked.has(a.id)} disabled={!m} onChange={(e) => toggle(a.id, e.target.checked)} aria-labelledby={`${rid}-name`} />
                      </td>
                      <td id={`${rid}-name`}>
                        {m ? <Link href={`/models/${a.id}`}>{a.name}</Link> : <s>{a.name}</s>}
                        {a.note ? (
                          <div className="muted" style={{ fontSize: "0.8rem" }} data-testid="scan-note">
                            {a.note}
                          </div>
                        ) : null}
                      </td>
                      <td>
                        <span className={`tag${a.status === "enabled" ? ` ${styles.addedTag}` : ""}`} data-testid="scan-status">
                          {STATUS_TEXT[a.status]}
                        </span>
                      </td>
                      <td>{m?.architecture ?? "—"}</td>
                      <td className="num">{formatParams(m?.parameterCount)}</td>
                      <td>{m?.quantization ?? "—"}</td>
                      <td className="num">{m?.contextLength?.toLocaleString("en-US") ?? "—"}</td>
                      <td className="num">{formatBytes(m?.sizeBytes)}</td>
                      <td className="num mono">{a.port}</td>
                      <td className={styles.path}>{a.filePath}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          <div className="form-actions">
            {/* Hidden when every listed model is enabled already: nothing to enable, ticked or not. */}
            {enableable.length > 0 ? (
              <button type="button" className="btn btn-primary" disabled={toEnable.length === 0 || working} onClick={() => apply("enable")} aria-busy={working} data-testid="enable-picked">
                Enable {toEnable.length} selected
              </button>
            ) : null}
            <button type="button" className="btn btn-danger" disabled={pickCount === 0 || working} onClick={() => apply("remove")} data-testid="remove-picked">
              Remove selected from the registry
            </button>
            <span className="muted" style={{ fontSize: "0.85rem" }}>
              START ALL ENABLED starts the enabled ones. Removing never touches the file.
            </span>
          </div>
        </div>
      ) : null}

      {report && (report.skipped.length > 0 || report.errors.length > 0) ? (
        <details className={styles.skipped} open={report.added.length === 0}>
          <summary>
            Skipped or unreadable ({report.skipped.length + report.errors.length})
          </summary>
          <ul>
            {report.skipped.map((s) => (
              <li key={`s-${s.path}`}>
                <code>{s.path}</code>: {s.reason}
              </li>
            ))}
            {report.errors.map((e) => (
              <li key={`e-${e.path}`} className={styles.rowError}>
                <code>{e.path}</code>: {e.message}
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </section>
  );
}
