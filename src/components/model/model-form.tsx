"use client";
/**
 * A model's settings: where it is, its port, and the runtime overrides
 * (empty = the global default, shown as the placeholder). The server
 * validates; each problem it reports appears beside its field and nothing
 * is saved.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useMemo, useState, type FormEvent } from "react";
import type { FieldErrors } from "~/components/api/errors";
import type { RouterInputs, RouterOutputs } from "~/components/api/types";
import { FieldError, FormErrors, SelectField, SwitchField, TextField } from "~/components/form/fields";
import { clearIssues, failureFromChecks, failureFromError, labelsByPrefix, placeFailure, type FormFailure, type FormLayout } from "~/components/form/form-failure";
import { intText, parseOptionalInt, parseRequiredInt } from "~/components/form/numbers";
import { useToast } from "~/components/ui/toaster";
import { contextSize } from "~/server/services/memory/context-size";
import { useTRPC } from "~/trpc/client";
import { EXTRA_FLAG_KINDS, EXTRA_FLAG_NAMES, valueHint, type ExtraFlagName } from "./extra-flags";
import { flagRowLabel, flagRowPath, newFlagRow, type FlagRow } from "./flag-rows";
import { MODEL_FIELD_LABELS as LABELS, OVERRIDES, type OverrideKey } from "./model-labels";
import styles from "./model.module.css";
import { MemoryEstimate, type EstimateInput, type InvalidField } from "./memory-estimate";

export type ModelView = RouterOutputs["models"]["get"];
type Settings = RouterOutputs["settings"]["get"];
type UpdateInput = RouterInputs["models"]["update"];
type CreateInput = RouterInputs["models"]["create"];


export interface ModelFormValues {
  name: string;
  hostId: string;
  filePath: string;
  port: string;
  enabled: boolean;
  flashAttn: string;
  loadMode: string;
  alias: string;
  loadPolicy: string;
  concurrency: string;
  queueLimit: string;
  startPriority: string;
  cacheRamMiB: string;
  serverApiKeyOff: boolean;
  overrides: Record<OverrideKey, string>;
  extraFlags: FlagRow[];
}

// Every field is always shown (the extra flags' rows by their keys, see FormLayout.rows).
const SHOWN = Object.keys(LABELS);
const fieldLabel = labelsByPrefix(LABELS);

export function valuesOf(model: Partial<ModelView> | undefined): ModelFormValues {
  const overrides = Object.fromEntries(OVERRIDES.map((o) => [o.key, intText(model?.[o.key] as number | null | undefined)])) as Record<OverrideKey, string>;
  return {
    name: model?.name ?? "",
    hostId: model?.hostId ?? "",
    filePath: model?.filePath ?? "",
    port: intText(model?.port),
    enabled: model?.enabled ?? false,
    flashAttn: model?.flashAttn ?? "",
    loadMode: model?.loadMode ?? "",
    alias: model?.alias ?? "",
    loadPolicy: model?.loadPolicy ?? "always",
    concurrency: intText(model?.concurrency),
    queueLimit: intText(model?.queueLimit),
    startPriority: intText(model?.startPriority),
    cacheRamMiB: intText(model?.cacheRamMiB),
    serverApiKeyOff: model?.serverApiKeyOff ?? false,
    overrides,
    extraFlags: (model?.extraFlags ?? []).map((f) => newFlagRow(f.flag as ExtraFlagName, f.value ?? "")),
  };
}

/** The number fields the live estimate reads, with the labels the form gives them. */
const ESTIMATE_FIELDS = ["ctxSize", "gpuLayers", "parallel", "batchSize", "ubatchSize", "cacheRamMiB"] as const;
const ESTIMATE_LABELS: Record<(typeof ESTIMATE_FIELDS)[number], string> = LABELS;

type Body = Omit<CreateInput, "hostId"> & { hostId?: string };

/** Form values → the API's input; numbers that are not numbers are caught here. */
function toBody(v: ModelFormValues): { body: Body; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const port = parseRequiredInt(v.port);
  if (!port.ok) errors.port = port.message;
  const overrides: Partial<Record<OverrideKey, number | null>> = {};
  for (const o of OVERRIDES) {
    const p = parseOptionalInt(v.overrides[o.key]);
    if (p.ok) overrides[o.key] = p.value;
    else errors[o.key] = p.message;
  }
  const concurrency = parseOptionalInt(v.concurrency);
  if (!concurrency.ok) errors.concurrency = concurrency.message;
  const queueLimit = parseOptionalInt(v.queueLimit);
  if (!queueLimit.ok) errors.queueLimit = queueLimit.message;
  const startPriority = parseOptionalInt(v.startPriority);
  if (!startPriority.ok) errors.startPriority = startPriority.message;
  const cacheRamMiB = parseOptionalInt(v.cacheRamMiB);
  if (!cacheRamMiB.ok) errors.cacheRamMiB = cacheRamMiB.message;
  const body: Body = {
    name: v.name.trim(),
    ...(v.hostId ? { hostId: v.hostId } : {}),
    filePath: v.filePath.trim(),
    port: port.ok ? port.value : 0,
    enabled: v.enabled,
    ...overrides,
    flashAttn: (v.flashAttn || null) as Body["flashAttn"],
    loadMode: (v.loadMode || null) as Body["loadMode"],
    alias: v.alias.trim() || null,
    loadPolicy: v.loadPolicy as Body["loadPolicy"],
    concurrency: concurrency.ok ? concurrency.value : null,
    queueLimit: queueLimit.ok ? queueLimit.value : null,
    startPriority: startPriority.ok ? startPriority.value : null,
    cacheRamMiB: cacheRamMiB.ok ? cacheRamMiB.value : null,
    serverApiKeyOff: v.serverApiKeyOff,
    extraFlags: v.extraFlags.map((f) => (EXTRA_FLAG_KINDS[f.flag] === "none" ? { flag: f.flag } : { flag: f.flag, value: f.value.trim() })),
  };
  return { body, errors };
}

/**
 * `saved`: show "Saved." from the start. The model page remounts the form when
 * the saved model comes back with its new version; this carries the note over.
 */
export function ModelForm({ model, initial, onSaved, submitLabel, saved: savedAtMount = false }: { model?: ModelView; initial?: Partial<ModelView>; onSaved?: (m: { id: string; name: string; updatedAt?: unknown }) => void; submitLabel?: string; saved?: boolean }) {
  const id = useId().replace(/:/g, "");
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const hosts = useQuery(trpc.hosts.list.queryOptions());
  const settings = useQuery(trpc.settings.get.queryOptions());
  const [values, setValues] = useState<ModelFormValues>(() => valuesOf(model ?? initial));
  const [failure, setFailure] = useState<FormFailure | null>(null);
  const [saved, setSaved] = useState(savedAtMount);

  const set = <K extends keyof ModelFormValues>(key: K, value: ModelFormValues[K]) => {
    setValues((v) => ({ ...v, [key]: value }));
    setSaved(false);
  };
  const setOverride = (key: OverrideKey, value: string) => {
    setValues((v) => ({ ...v, overrides: { ...v.overrides, [key]: value } }));
    setSaved(false);
  };

  const onDone = (m: { id: string; name: string; updatedAt?: unknown; pathCheck?: { checked: boolean; note: string | null } | null; logMove?: { moved: boolean; note: string } | null; portWarning?: string | null }, updated: boolean) => {
    setFailure(null);
    setSaved(true);
    void queryClient.invalidateQueries({ queryKey: trpc.models.pathKey() });
    void queryClient.invalidateQueries({ queryKey: trpc.servers.status.queryKey() });
    // A port another program holds now, a path the host could not check, or a renamed model's log left under its old name, stays on screen until
    // dismissed: the form may close or remount after a save.
    const notes = [m.portWarning, m.pathCheck?.note, m.logMove && !m.logMove.moved ? m.logMove.note : null].filter((n): n is string => !!n);
    if (notes.length > 0) toast.push(`Saved ${m.name}; ${notes.join("; ")}.`, "bad");
    else if (!updated) toast.push(`Saved ${m.name}`, "ok");
    else {
      // A running server started with other settings than those saved now goes on with the old ones until it is
      // restarted: the command-line panel's own test (models.commandPreview's running.upToDate), read fresh.
      void queryClient.fetchQuery({ ...trpc.models.commandPreview.queryOptions({ id: m.id }), staleTime: 0 }).then(
        (p) => (p.running && !p.running.upToDate ? toast.push(`Saved; restart ${m.name} to apply`, "info") : toast.push(`Saved ${m.name}`, "ok")),
        () => toast.push(`Saved ${m.name}`, "ok"),
      );
    }
    onSaved?.(m);
  };
  const update = useMutation(trpc.models.update.mutationOptions({ onSuccess: (m) => onDone(m, true) }));
  const create = useMutation(trpc.models.create.mutationOptions({ onSuccess: (m) => onDone(m, false) }));
  const pending = update.isPending || create.isPending;

  function submit(e: FormEvent) {
    e.preventDefault();
    const { body, errors: local } = toBody(values);
    if (Object.keys(local).length) {
      setFailure(failureFromChecks(local));
      return;
    }
    // The server names a flag row by its index in what was sent: the failure keeps it under that row's key.
    const sent = { extraFlags: values.extraFlags.map((r) => r.key) };
    const onError = (err: unknown) => {
      setFailure(failureFromError(err, sent));
      setSaved(false);
    };
    if (model) update.mutate({ id: model.id, ...body } as UpdateInput, { onError });
    else create.mutate(body as CreateInput, { onError });
  }
  /** New rows; `edited`: the key of the row changed or removed, whose issues go (the user is fixing them). */
  const setFlags = (rows: FlagRow[], edited?: string) => {
    set("extraFlags", rows);
    if (edited !== undefined) setFailure((old) => clearIssues(old, flagRowPath(edited)));
  };

  // The live estimate: the form's runtime values as they are, when they parse (a saved model only); the
  // fields that do not parse are named beside it, so a stale estimate is never taken for these values.
  const { estimateInput, estimateInvalid } = useMemo((): { estimateInput: EstimateInput | null; estimateInvalid: InvalidField[] } => {
    if (!model) return { estimateInput: null, estimateInvalid: [] };
    const { body, errors: bad } = toBody(values);
    const invalid = ESTIMATE_FIELDS.filter((k) => bad[k] !== undefined).map((k) => ({ label: ESTIMATE_LABELS[k], message: bad[k]! }));
    if (invalid.length > 0) return { estimateInput: null, estimateInvalid: invalid };
    return {
      estimateInput: { id: model.id, ctxSize: body.ctxSize ?? null, gpuLayers: body.gpuLayers ?? null, parallel: body.parallel ?? null, batchSize: body.batchSize ?? null, ubatchSize: body.ubatchSize ?? null, flashAttn: body.flashAttn ?? null, loadMode: body.loadMode ?? null, cacheRamMiB: body.cacheRamMiB ?? null, extraFlags: body.extraFlags ?? [] },
      estimateInvalid: [],
    };
  }, [model, values]);

  const defaults = settings.data as Settings | undefined;
  const placeholder = (key: OverrideKey) => {
    const d = defaults && key in defaults ? (defaults as Record<string, unknown>)[key] : undefined;
    if (d === undefined) return "default";
    // A null default is llama-server's own count (only threads has one).
    if (d === null) return "default: auto (the host's cores)";
    // Empty runs with no more than the model's trained context: the same rule as the spec (context-size.ts).
    if (key === "ctxSize" && typeof d === "number" && model) {
      const c = contextSize({ ctxSize: null, contextLength: model.contextLength }, { ctxSize: d });
      if (c.cappedDefault !== null) return `default: ${c.ctxSize} (model's own)`;
    }
    return `default: ${String(d)}`;
  };
  const f = (name: string) => `${id}-${name}`;
  const layout: FormLayout = {
    shown: SHOWN,
    rows: { extraFlags: values.extraFlags.map((r) => r.key) },
    label: (path) => flagRowLabel(path, values.extraFlags) ?? fieldLabel(path),
  };
  // Issues for fields the form does not have are listed above it.
  const { summary, fields: errors, unplaced } = placeFailure(failure, layout);

  return (
    <form onSubmit={submit} noValidate aria-label={model ? `Settings of ${model.name}` : "New model"} data-testid="model-form">
      <FormErrors message={summary} issues={unplaced} />
      <fieldset>
        <legend>Model</legend>
        <div className="form-grid">
          <TextField id={f("name")} label={LABELS.name} hint="the model id; letters, digits, . _ -" value={values.name} onChange={(v) => set("name", v)} error={errors.name} required mono />
          <SelectField
            id={f("hostId")}
            label={LABELS.hostId}
            value={values.hostId}
            onChange={(v) => set("hostId", v)}
            error={errors.hostId}
            options={[...(model ? [] : [{ value: "", label: "The default host" }]), ...(hosts.data ?? []).map((h) => ({ value: h.id, label: h.name }))]}
          />
          <TextField id={f("port")} label={LABELS.port} hint="1024–65535, unique on the host" inputMode="numeric" value={values.port} onChange={(v) => set("port", v)} error={errors.port} required mono />
          <SwitchField id={f("enabled")} label={LABELS.enabled} checked={values.enabled} onChange={(v) => set("enabled", v)} error={errors.enabled} />
        </div>
        <div className="form-grid" style={{ marginTop: 14, gridTemplateColumns: "minmax(0, 1fr)" }}>
          <TextField id={f("filePath")} label={LABELS.filePath} hint="absolute path, as the registry names it (e.g. /models/…/model.gguf)" value={values.filePath} onChange={(v) => set("filePath", v)} error={errors.filePath} required mono />
        </div>
      </fieldset>

      <fieldset>
        <legend>Runtime (empty = global default)</legend>
        <div className="form-grid">
          {OVERRIDES.map((o) => (
            <TextField key={o.key} id={f(o.key)} label={LABELS[o.key]} hint={o.hint} inputMode="numeric" placeholder={placeholder(o.key)} value={values.overrides[o.key]} onChange={(v) => setOverride(o.key, v)} error={errors[o.key]} mono />
          ))}
          <SelectField
            id={f("flashAttn")}
            label={LABELS.flashAttn}
            value={values.flashAttn}
            onChange={(v) => set("flashAttn", v)}
            error={errors.flashAttn}
            options={[{ value: "", label: `Default${defaults ? ` (${defaults.flashAttn})` : ""}` }, { value: "on", label: "on" }, { value: "off", label: "off" }, { value: "auto", label: "auto" }]}
          />
          <SelectField
            id={f("loadMode")}
            label={LABELS.loadMode}
            hint="mmap (default), no-mmap (read into memory), mlock"
            value={values.loadMode}
            onChange={(v) => set("loadMode", v)}
            error={errors.loadMode}
            options={[{ value: "", label: `Default${defaults ? ` (${defaults.loadMode})` : ""}` }, { value: "mmap", label: "mmap" }, { value: "no-mmap", label: "no-mmap" }, { value: "mlock", label: "mlock" }]}
          />
          <TextField id={f("alias")} label={LABELS.alias} hint="name the server reports to clients" value={values.alias} onChange={(v) => set("alias", v)} error={errors.alias} />
        </div>
      </fieldset>

      <fieldset>
        <legend>Serving (the gateway, /v1)</legend>
        <div className="form-grid">
          <SelectField
            id={f("loadPolicy")}
            label={LABELS.loadPolicy}
            hint="always: START ALL ENABLED starts it; on demand: the first request that names it does, and it unloads when idle"
            value={values.loadPolicy}
            onChange={(v) => set("loadPolicy", v)}
            error={errors.loadPolicy}
            options={[{ value: "always", label: "always" }, { value: "on-demand", label: "on demand" }]}
          />
          <TextField id={f("concurrency")} label={LABELS.concurrency} hint="requests at once; more wait in the queue" inputMode="numeric" placeholder="default: its parallel slots" value={values.concurrency} onChange={(v) => set("concurrency", v)} error={errors.concurrency} mono />
          <SwitchField id={f("serverApiKeyOff")} label={LABELS.serverApiKeyOff} checked={values.serverApiKeyOff} onChange={(v) => set("serverApiKeyOff", v)} error={errors.serverApiKeyOff} />
          <TextField
            id={f("startPriority")}
            label={LABELS.startPriority}
            hint="when memory is short, START ALL ENABLED starts higher priorities first, then by name"
            inputMode="numeric"
            placeholder="default: 0"
            value={values.startPriority}
            onChange={(v) => set("startPriority", v)}
            error={errors.startPriority}
            mono
          />
          <TextField
            id={f("cacheRamMiB")}
            label={LABELS.cacheRamMiB}
            hint="llama-server's --cache-ram: host memory for cached prompts, filled with use; 0 turns it off"
            inputMode="numeric"
            placeholder="default: llama-server's 8192"
            value={values.cacheRamMiB}
            onChange={(v) => set("cacheRamMiB", v)}
            error={errors.cacheRamMiB}
            mono
          />
          <TextField id={f("queueLimit")} label={LABELS.queueLimit} hint="requests that may wait; past it: 429" inputMode="numeric" placeholder="default: 32" value={values.queueLimit} onChange={(v) => set("queueLimit", v)} error={errors.queueLimit} mono />
        </div>
      </fieldset>

      <ExtraFlagsEditor id={f("flags")} rows={values.extraFlags} onChange={setFlags} errors={errors} />

      {model ? <MemoryEstimate input={estimateInput} flagRows={values.extraFlags} fieldLabel={fieldLabel} invalid={estimateInvalid} /> : null}

      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={pending} aria-busy={pending} data-testid="save-model">
          <span className="spin" data-on={pending} aria-hidden="true" />
          {submitLabel ?? (model ? "Save settings" : "Add model")}
        </button>
        <span role="status" aria-live="polite" className="muted" data-testid="save-state">
          {saved ? "Saved." : ""}
        </span>
      </div>
    </form>
  );
}

/**
 * The extra flags' rows. `errors`: the placed, worded issues (a row's under "extraFlags.<row key>…",
 * the list's under "extraFlags"). `onChange(rows, edited)`: `edited` is the key of the row changed
 * or removed (none when a row is added).
 */
function ExtraFlagsEditor({ id, rows, onChange, errors }: { id: string; rows: FlagRow[]; onChange: (rows: FlagRow[], edited?: string) => void; errors: FieldErrors }) {
  const setRow = (row: FlagRow) => onChange(rows.map((r) => (r.key === row.key ? row : r)), row.key);
  return (
    <fieldset>
      <legend>Extra flags</legend>
      {rows.length === 0 ? <p className="muted" style={{ fontSize: "0.88rem" }}>None. Only flags from the agent&apos;s allowlist can be added.</p> : null}
      <FieldError id={`${id}-all`} error={errors.extraFlags} />
      <ul className={styles.flagList}>
        {rows.map((r, i) => {
          const kind = EXTRA_FLAG_KINDS[r.flag];
          const at = flagRowPath(r.key);
          const err = [errors[`${at}.value`], errors[`${at}.flag`], errors[at]].filter(Boolean).join("; ") || undefined;
          return (
            <li key={r.key} className={styles.flagRow}>
              <label className="visually-hidden" htmlFor={`${id}-${i}-flag`}>
                Flag {i + 1}
              </label>
              <select id={`${id}-${i}-flag`} value={r.flag} onChange={(e) => setRow({ ...r, flag: e.target.value as ExtraFlagName, value: "" })} className="mono">
                {EXTRA_FLAG_NAMES.map((n) => (
                  <option key={n} value={n}>
                    {n}
                  </option>
                ))}
              </select>
              <label className="visually-hidden" htmlFor={`${id}-${i}-value`}>
                Value of flag {i + 1}
              </label>
              <input
                id={`${id}-${i}-value`}
                type="text"
                className="mono"
                value={kind === "none" ? "" : r.value}
                disabled={kind === "none"}
                placeholder={valueHint(r.flag)}
                onChange={(e) => setRow({ ...r, value: e.target.value })}
                aria-invalid={err ? true : undefined}
                aria-describedby={err ? `${id}-${i}-error` : undefined}
              />
              <button type="button" className="btn btn-ghost btn-sm" onClick={() => onChange(rows.filter((x) => x.key !== r.key), r.key)} aria-label={`Remove ${r.flag}`}>
                Remove
              </button>
              {err ? (
                <span id={`${id}-${i}-error`} className={`field-error ${styles.flagError}`} role="alert">
                  {err}
                </span>
              ) : null}
            </li>
          );
        })}
      </ul>
      <button type="button" className="btn btn-sm" onClick={() => onChange([...rows, newFlagRow("--metrics")])} disabled={rows.length >= 32}>
        Add flag
      </button>
    </fieldset>
  );
}
