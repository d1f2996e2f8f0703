"use client";
/**
 * Upload the seed's backend/data/model_registry.json and/or
 * runtime_settings.json as they are. The files are read in the browser and
 * sent as text (the server finds keys given twice in it); the report says what was created, updated or refused (with
 * each refused model's field problems).
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { errorMessage, fieldErrorsOf, type FieldErrors } from "~/components/api/errors";
import type { RouterOutputs } from "~/components/api/types";
import { FieldError, FormErrors, SelectField } from "~/components/form/fields";
import { useToast } from "~/components/ui/toaster";
import { useTRPC } from "~/trpc/client";
import styles from "./discover.module.css";

type ImportReport = RouterOutputs["models"]["import"];

/** The file's text, checked to be JSON here; sent as text so the server sees a model id given twice (JSON.parse keeps only the last). */
async function readJson(file: File | null): Promise<{ value?: string; error?: string }> {
  if (!file) return {};
  if (file.size > 5 * 1024 * 1024) return { error: "is larger than 5 MB; is this the right file?" };
  try {
    const text = await file.text();
    JSON.parse(text.replace(/^\uFEFF/, ""));
    return { value: text };
  } catch (e) {
    return { error: `is not valid JSON (${e instanceof Error ? e.message : String(e)})` };
  }
}

export function ImportForm() {
  const id = useId().replace(/:/g, "");
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const hosts = useQuery(trpc.hosts.list.queryOptions());
  const [registry, setRegistry] = useState<File | null>(null);
  const [runtime, setRuntime] = useState<File | null>(null);
  const [hostId, setHostId] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [report, setReport] = useState<ImportReport | null>(null);

  const run = useMutation(
    trpc.models.import.mutationOptions({
      onSuccess: (r) => {
        setReport(r);
        setErrors({});
        setFormError(null);
        toast.push("Import finished", "ok");
        void queryClient.invalidateQueries();
      },
      onError: (err) => {
        setReport(null);
        const fe = fieldErrorsOf(err);
        setErrors(fe);
        setFormError(`Nothing imported: ${errorMessage(err)}`);
      },
    }),
  );

  async function submit(e: FormEvent) {
    e.preventDefault();
    setReport(null);
    const local: FieldErrors = {};
    if (!registry && !runtime) local.registry = "choose model_registry.json, runtime_settings.json, or both";
    const [reg, rt] = await Promise.all([readJson(registry), readJson(runtime)]);
    if (reg.error) local.registry = `${registry?.name} ${reg.error}`;
    if (rt.error) local.runtimeSettings = `${runtime?.name} ${rt.error}`;
    setErrors(local);
    if (Object.keys(local).length) {
      setFormError("Nothing imported: fix the fields marked below.");
      return;
    }
    setFormError(null);
    run.mutate({
      ...(reg.value !== undefined ? { registry: reg.value } : {}),
      ...(rt.value !== undefined ? { runtimeSettings: rt.value } : {}),
      ...(hostId ? { hostId } : {}),
    });
  }

  return (
    <form onSubmit={submit} noValidate aria-label="Import the seed's registry files" data-testid="import-form">
      <FormErrors message={formError} />
      <div className="form-grid">
        <div className="field">
          <label htmlFor={`${id}-registry`}>model_registry.json</label>
          <input id={`${id}-registry`} type="file" accept="application/json,.json" onChange={(e) => setRegistry(e.target.files?.[0] ?? null)} aria-invalid={errors.registry ? true : undefined} aria-describedby={`${id}-registry-hint${errors.registry ? ` ${id}-registry-error` : ""}`} data-testid="import-registry" />
          <span id={`${id}-registry-hint`} className="hint">
            the seed&apos;s backend/data/model_registry.json
          </span>
          <FieldError id={`${id}-registry`} error={errors.registry} />
        </div>
        <div className="field">
          <label htmlFor={`${id}-runtime`}>runtime_settings.json</label>
          <input id={`${id}-runtime`} type="file" accept="application/json,.json" onChange={(e) => setRuntime(e.target.files?.[0] ?? null)} aria-invalid={errors.runtimeSettings ? true : undefined} aria-describedby={`${id}-runtime-hint${errors.runtimeSettings ? ` ${id}-runtime-error` : ""}`} data-testid="import-runtime" />
          <span id={`${id}-runtime-hint`} className="hint">
            global defaults: n_gpu_layers, ctx_size, threads, …
          </span>
          <FieldError id={`${id}-runtime`} error={errors.runtimeSettings} />
        </div>
        <SelectField
          id={`${id}-host`}
          label="Host the models run on"
          value={hostId}
          onChange={setHostId}
          error={errors.hostId}
          options={[{ value: "", label: "The default host" }, ...(hosts.data ?? []).map((h) => ({ value: h.id, label: h.name }))]}
        />
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={run.isPending} aria-busy={run.isPending} data-testid="import-submit">
          <span className="spin" data-on={run.isPending} aria-hidden="true" />
          Import
        </button>
      </div>
      <div aria-live="polite">{report ? <ImportReportView report={report} /> : null}</div>
    </form>
  );
}

function ImportReportView({ report }: { report: ImportReport }) {
  const list = (title: string, names: readonly string[], tone: string) =>
    names.length ? (
      <div className={styles.reportGroup}>
        <h3>
          {title} <span className="tag">{names.length}</span>
        </h3>
        <p className={styles.names} data-tone={tone}>
          {names.join(", ")}
        </p>
      </div>
    ) : null;
  const settingsText = { updated: "Global defaults updated from runtime_settings.json.", unchanged: "Global defaults already matched runtime_settings.json.", absent: null, invalid: "runtime_settings.json was not applied:" }[report.settings];
  return (
    <section className={styles.report} data-testid="import-report" aria-label="Import report">
      {list("Created", report.created, "ok")}
      {list("Updated", report.updated, "info")}
      {list("Unchanged", report.unchanged, "idle")}
      {report.invalid.length ? (
        <div className={styles.reportGroup}>
          <h3>
            Refused <span className="tag">{report.invalid.length}</span>
          </h3>
          <ul>
            {report.invalid.map((m) => (
              <li key={m.modelId}>
                <code>{m.modelId}</code>: {m.issues.map((i) => `${i.path ? `${i.path} ` : ""}${i.message}`).join("; ")}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {settingsText ? (
        <div className={styles.reportGroup}>
          <p>{settingsText}</p>
          {report.settingsIssues.length ? (
            <ul>
              {report.settingsIssues.map((i) => (
                <li key={i.path}>
                  <code>{i.path}</code> {i.message}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      {report.created.length + report.updated.length + report.unchanged.length + report.invalid.length === 0 && report.settings === "absent" ? <p className="muted">The file held no models.</p> : null}
    </section>
  );
}
