"use client";
/** Global runtime defaults (the seed's runtime_settings.json): every model without an override uses these. */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { errorMessage, type FieldErrors } from "~/components/api/errors";
import type { RouterInputs, RouterOutputs } from "~/components/api/types";
import { FormErrors, SelectField, SwitchField, TextField } from "~/components/form/fields";
import { failureFromChecks, failureFromError, labelsByPrefix, placeFailure, type FormFailure } from "~/components/form/form-failure";
import { intText, parseOptionalInt, parseRequiredInt } from "~/components/form/numbers";
import { SERVER_NUMBER_FIELDS } from "~/components/form/server-settings";
import { GatewayKeys } from "./gateway-keys";
import { useToast } from "~/components/ui/toaster";
import { useTRPC } from "~/trpc/client";

type Settings = RouterOutputs["settings"]["get"];
type SettingsInput = RouterInputs["settings"]["update"];

const NUMBERS = SERVER_NUMBER_FIELDS;
type NumberKey = (typeof NUMBERS)[number]["key"];
/** Numbers that may be left empty, and what empty means: no --threads, so llama-server counts the host's cores. */
const EMPTY_MEANS: Partial<Record<NumberKey, string>> = { threads: "auto (the host's cores)" };
/** Each field's label, as the form shows it and as its refusals name it. */
const LABELS: Record<NumberKey | "flashAttn" | "loadMode" | "autoRestart", string> = {
  ...(Object.fromEntries(NUMBERS.map((n) => [n.key, n.label])) as Record<NumberKey, string>),
  flashAttn: "Flash attention",
  loadMode: "Load mode",
  autoRestart: "Restart crashed servers",
};
const LAYOUT = { shown: Object.keys(LABELS), label: labelsByPrefix(LABELS) };

interface Values {
  numbers: Record<NumberKey, string>;
  flashAttn: string;
  loadMode: string;
  autoRestart: boolean;
}

function valuesOf(s: Settings): Values {
  return {
    numbers: Object.fromEntries(NUMBERS.map((n) => [n.key, intText(s[n.key])])) as Record<NumberKey, string>,
    flashAttn: s.flashAttn,
    loadMode: s.loadMode,
    autoRestart: s.autoRestart,
  };
}

export function SettingsPage() {
  const trpc = useTRPC();
  const settings = useQuery(trpc.settings.get.queryOptions());
  /** The version last saved from this page (see SettingsForm's `saved`). */
  const [savedVersion, setSavedVersion] = useState<string | null>(null);
  return (
    <>
      <div className="page-head">
        <h1>Settings</h1>
      </div>
      <p className="muted" style={{ maxWidth: 760 }}>
        Defaults for every model that does not set its own value (like <code>runtime_settings.json</code> in your previous Synapse Engine setup). A running server keeps the values it was started with until it is restarted.
      </p>
      {settings.isError ? (
        <div className="notice" data-tone="bad" role="alert">
          <div>Could not load the settings: {errorMessage(settings.error)}</div>
        </div>
      ) : settings.data ? (
        // A newly stored version remounts the form with it; "Saved." stays when it is the version saved here.
        <SettingsForm key={String(settings.data.updatedAt)} settings={settings.data} saved={savedVersion === String(settings.data.updatedAt)} onSaved={setSavedVersion} />
      ) : (
        <div className="panel">
          <div className="skeleton" style={{ height: 340 }} />
        </div>
      )}
      <GatewayKeys />
    </>
  );
}

function SettingsForm({ settings, saved: savedAtMount, onSaved }: { settings: Settings; saved: boolean; onSaved: (version: string) => void }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [values, setValues] = useState<Values>(() => valuesOf(settings));
  const [failure, setFailure] = useState<FormFailure | null>(null);
  const [saved, setSaved] = useState(savedAtMount);
  const update = useMutation(
    trpc.settings.update.mutationOptions({
      onSuccess: (stored) => {
        setFailure(null);
        setSaved(true);
        onSaved(String(stored.updatedAt));
        toast.push("Settings saved", "ok");
        void queryClient.invalidateQueries({ queryKey: trpc.settings.get.queryKey() });
        void queryClient.invalidateQueries({ queryKey: trpc.models.pathKey() });
      },
      onError: (err) => {
        setFailure(failureFromError(err));
        setSaved(false);
      },
    }),
  );

  function submit(e: FormEvent) {
    e.preventDefault();
    const local: FieldErrors = {};
    const input: Record<string, unknown> = { flashAttn: values.flashAttn, loadMode: values.loadMode, autoRestart: values.autoRestart };
    for (const n of NUMBERS) {
      const p = EMPTY_MEANS[n.key] !== undefined ? parseOptionalInt(values.numbers[n.key]) : parseRequiredInt(values.numbers[n.key]);
      if (p.ok) input[n.key] = p.value;
      else local[n.key] = p.message;
    }
    if (Object.keys(local).length) {
      setFailure(failureFromChecks(local));
      return;
    }
    update.mutate(input as SettingsInput);
  }

  const change = (fn: (v: Values) => Values) => {
    setValues(fn);
    setSaved(false);
  };

  const { summary, fields: errors, unplaced } = placeFailure(failure, LAYOUT);
  return (
    <form className="panel" onSubmit={submit} noValidate aria-label="Global runtime defaults" data-testid="settings-form">
      <FormErrors message={summary} issues={unplaced} />
      <div className="form-grid">
        {NUMBERS.map((n) => (
          <TextField
            key={n.key}
            id={`settings-${n.key}`}
            label={n.label}
            hint={n.hint}
            inputMode="numeric"
            placeholder={EMPTY_MEANS[n.key]}
            value={values.numbers[n.key]}
            onChange={(v) => change((old) => ({ ...old, numbers: { ...old.numbers, [n.key]: v } }))}
            error={errors[n.key]}
            mono
          />
        ))}
        <SelectField
          id="settings-flashAttn"
          label={LABELS.flashAttn}
          value={values.flashAttn}
          onChange={(v) => change((old) => ({ ...old, flashAttn: v }))}
          error={errors.flashAttn}
          options={[{ value: "on", label: "on" }, { value: "off", label: "off" }, { value: "auto", label: "auto" }]}
        />
        <SelectField
          id="settings-loadMode"
          label={LABELS.loadMode}
          hint="mmap (default), no-mmap (no_mmap in runtime_settings.json), mlock"
          value={values.loadMode}
          onChange={(v) => change((old) => ({ ...old, loadMode: v }))}
          error={errors.loadMode}
          options={[{ value: "mmap", label: "mmap" }, { value: "no-mmap", label: "no-mmap" }, { value: "mlock", label: "mlock" }]}
        />
        <SwitchField
          id="settings-autoRestart"
          label={LABELS.autoRestart}
          hint="with backoff; a server that keeps crashing is marked failed"
          checked={values.autoRestart}
          onChange={(v) => change((old) => ({ ...old, autoRestart: v }))}
          error={errors.autoRestart}
        />
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={update.isPending} aria-busy={update.isPending} data-testid="save-settings">
          <span className="spin" data-on={update.isPending} aria-hidden="true" />
          Save defaults
        </button>
        <button type="button" className="btn btn-ghost" onClick={() => change(() => valuesOf(settings))}>
          Reset
        </button>
        <span data-testid="settings-save-state" role="status" aria-live="polite" className="muted">
          {saved ? "Saved." : ""}
        </span>
      </div>
    </form>
  );
}
