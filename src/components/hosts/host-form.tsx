"use client";
/** Add or edit a host: an SSH host (the Mac) or the local machine. */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import type { RouterInputs, RouterOutputs } from "~/components/api/types";
import { FormErrors, SelectField, TextField } from "~/components/form/fields";
import { failureFromChecks, failureFromError, labelsByPrefix, placeFailure, type FormFailure } from "~/components/form/form-failure";
import { intText, parseOptionalInt, parseRequiredInt, type Parsed } from "~/components/form/numbers";
import { useToast } from "~/components/ui/toaster";
import { useTRPC } from "~/trpc/client";

export type HostItem = RouterOutputs["hosts"]["list"][number];
type UpsertInput = RouterInputs["hosts"]["upsert"];

const TEXT_FIELDS = ["name", "sshHost", "sshUser", "sshIdentityFile", "hostModelsRoot", "registryModelsRoot", "llamaServerBin", "hostKeyFingerprint", "modelPorts", "directAddress"] as const;
type TextKey = (typeof TEXT_FIELDS)[number];

interface Values extends Record<TextKey, string> {
  linkKind: string;
  sshPort: string;
  upstreamMode: string;
  memoryBudgetMiB: string;
}

/** Each field's label, as the form shows it and as its refusals name it. */
const LABELS = {
  name: "Name",
  linkKind: "Reached through",
  sshHost: "SSH host",
  sshUser: "SSH user",
  sshPort: "SSH port",
  sshIdentityFile: "Private key file",
  hostModelsRoot: "Models folder on the host",
  registryModelsRoot: "Same folder as the registry names it",
  llamaServerBin: "llama-server binary",
  memoryBudgetMiB: "Memory budget (MiB)",
  hostKeyFingerprint: "Pinned host key",
  upstreamMode: "Gateway reaches its models",
  directAddress: "Direct address",
  modelPorts: "Model ports",
} as const satisfies Record<TextKey | keyof Values, string>;
const labelOf = labelsByPrefix(LABELS);

/** The fields the form shows for these values: a local host has no ssh fields, each upstream mode its own field. */
function shownFields(v: Values): string[] {
  const always = ["name", "linkKind", "hostModelsRoot", "registryModelsRoot", "llamaServerBin", "memoryBudgetMiB"];
  if (v.linkKind !== "ssh") return always;
  return [...always, "sshHost", "sshUser", "sshPort", "sshIdentityFile", "hostKeyFingerprint", "upstreamMode", v.upstreamMode === "direct" ? "directAddress" : "modelPorts"];
}

function valuesOf(h: HostItem | undefined): Values {
  return {
    name: h?.name ?? "",
    linkKind: h?.linkKind ?? "ssh",
    sshHost: h?.sshHost ?? "",
    sshPort: intText(h?.sshPort ?? 22),
    sshUser: h?.sshUser ?? "",
    sshIdentityFile: h?.sshIdentityFile ?? "",
    hostKeyFingerprint: h?.hostKeyFingerprint ?? "",
    hostModelsRoot: h?.hostModelsRoot ?? "",
    registryModelsRoot: h?.registryModelsRoot ?? "",
    llamaServerBin: h?.llamaServerBin ?? "",
    upstreamMode: h?.upstreamMode ?? "tunnel",
    modelPorts: h?.modelPorts ?? "",
    directAddress: h?.directAddress ?? "",
    memoryBudgetMiB: intText(h?.memoryBudgetMiB),
  };
}

export function HostForm({ host, onDone, onCancel }: { host?: HostItem; onDone?: () => void; onCancel?: () => void }) {
  const id = useId().replace(/:/g, "");
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [values, setValues] = useState<Values>(() => valuesOf(host));
  // Kept whole while the user switches modes: placeFailure puts each issue beside its field when shown, else above.
  const [failure, setFailure] = useState<FormFailure | null>(null);
  const upsert = useMutation(
    trpc.hosts.upsert.mutationOptions({
      onSuccess: (h) => {
        toast.push(`Saved host ${h.name}`, "ok");
        setFailure(null);
        void queryClient.invalidateQueries({ queryKey: trpc.hosts.pathKey() });
        void queryClient.invalidateQueries({ queryKey: trpc.servers.status.queryKey() });
        if (!host) setValues(valuesOf(undefined));
        onDone?.();
      },
      onError: (err) => setFailure(failureFromError(err)),
    }),
  );

  const set = (key: keyof Values) => (v: string) => setValues((old) => ({ ...old, [key]: v }));
  const ssh = values.linkKind === "ssh";

  function submit(e: FormEvent) {
    e.preventDefault();
    // A local host has no ssh settings (the server refuses them): its hidden ssh fields are not read or sent.
    const port: Parsed<number> = ssh ? parseRequiredInt(values.sshPort) : { ok: true, value: 22 };
    const budget = parseOptionalInt(values.memoryBudgetMiB);
    if (!port.ok || !budget.ok) {
      setFailure(failureFromChecks({ ...(port.ok ? {} : { sshPort: port.message }), ...(budget.ok ? {} : { memoryBudgetMiB: budget.message }) }));
      return;
    }
    const opt = (v: string) => (v.trim() === "" ? null : v.trim());
    // Each upstream mode has its own field (the server refuses the other's): the hidden one is not sent, so it is
    // cleared when saved. Both stay in `values`, so switching modes back and forth before saving loses neither.
    const direct = values.upstreamMode === "direct";
    const input = {
      ...(host ? { id: host.id } : {}),
      name: values.name.trim(),
      linkKind: values.linkKind as "local" | "ssh",
      sshHost: ssh ? opt(values.sshHost) : null,
      ...(ssh ? { sshPort: port.value, upstreamMode: direct ? ("direct" as const) : ("tunnel" as const) } : {}),
      sshUser: ssh ? opt(values.sshUser) : null,
      sshIdentityFile: ssh ? opt(values.sshIdentityFile) : null,
      hostKeyFingerprint: ssh ? opt(values.hostKeyFingerprint) : null,
      hostModelsRoot: opt(values.hostModelsRoot),
      registryModelsRoot: opt(values.registryModelsRoot),
      llamaServerBin: opt(values.llamaServerBin),
      modelPorts: ssh && !direct ? opt(values.modelPorts) : null,
      directAddress: ssh && direct ? opt(values.directAddress) : null,
      memoryBudgetMiB: budget.value,
    } satisfies UpsertInput;
    upsert.mutate(input);
  }

  const f = (n: string) => `${id}-${n}`;
  const { summary, fields: errors, unplaced } = placeFailure(failure, { shown: shownFields(values), label: labelOf });
  return (
    <form onSubmit={submit} noValidate aria-label={host ? `Edit host ${host.name}` : "Add a host"} data-testid="host-form">
      <FormErrors message={summary} issues={unplaced} />
      <div className="form-grid">
        <TextField id={f("name")} label={LABELS.name} hint="e.g. mac-studio" value={values.name} onChange={set("name")} error={errors.name} required />
        <SelectField
          id={f("linkKind")}
          label={LABELS.linkKind}
          value={values.linkKind}
          onChange={set("linkKind")}
          error={errors.linkKind}
          options={[{ value: "ssh", label: "SSH (the Mac, from Docker)" }, { value: "local", label: "This machine (no SSH)" }]}
        />
        {ssh ? (
          <>
            <TextField id={f("sshHost")} label={LABELS.sshHost} hint="host name, IP, or an alias from the ssh config (e.g. mac-host)" value={values.sshHost} onChange={set("sshHost")} error={errors.sshHost} required mono />
            <TextField id={f("sshUser")} label={LABELS.sshUser} value={values.sshUser} onChange={set("sshUser")} error={errors.sshUser} mono />
            <TextField id={f("sshPort")} label={LABELS.sshPort} inputMode="numeric" value={values.sshPort} onChange={set("sshPort")} error={errors.sshPort} mono />
            <TextField id={f("sshIdentityFile")} label={LABELS.sshIdentityFile} hint="on the app's machine (in Docker: the container); a relative path is under the folder the app was started from (/app in the image), e.g. host-api/.ssh/id_ed25519" value={values.sshIdentityFile} onChange={set("sshIdentityFile")} error={errors.sshIdentityFile} mono />
          </>
        ) : null}
        <TextField id={f("hostModelsRoot")} label={LABELS.hostModelsRoot} hint="PRAXIS_MODEL_PATH in your previous Synapse Engine setup" value={values.hostModelsRoot} onChange={set("hostModelsRoot")} error={errors.hostModelsRoot} mono />
        <TextField id={f("registryModelsRoot")} label={LABELS.registryModelsRoot} hint="e.g. /models (set both or neither)" value={values.registryModelsRoot} onChange={set("registryModelsRoot")} error={errors.registryModelsRoot} mono />
        <TextField id={f("llamaServerBin")} label={LABELS.llamaServerBin} hint="empty: the agent uses LLAMA_SERVER_BIN, else PATH, Homebrew's folders, then npm run llama:build's cache" value={values.llamaServerBin} onChange={set("llamaServerBin")} error={errors.llamaServerBin} mono />
        <TextField
          id={f("memoryBudgetMiB")}
          label={LABELS.memoryBudgetMiB}
          hint="what its llama-servers may use together; empty: what its agent reports (on a Mac, the GPU's working-set limit)"
          inputMode="numeric"
          placeholder="reported by the agent"
          value={values.memoryBudgetMiB}
          onChange={set("memoryBudgetMiB")}
          error={errors.memoryBudgetMiB}
          mono
        />
        {ssh ? (
          <TextField
            id={f("hostKeyFingerprint")}
            label={LABELS.hostKeyFingerprint}
            hint="SHA256:… — or leave empty, test the connection, and pin the key it shows"
            value={values.hostKeyFingerprint}
            onChange={set("hostKeyFingerprint")}
            error={errors.hostKeyFingerprint}
            mono
          />
        ) : null}
        {ssh ? (
          <>
            <SelectField
              id={f("upstreamMode")}
              label={LABELS.upstreamMode}
              value={values.upstreamMode}
              onChange={set("upstreamMode")}
              error={errors.upstreamMode}
              options={[
                { value: "tunnel", label: "Through the SSH connection (127.0.0.1 on the host)" },
                { value: "direct", label: "Directly (address:port, as the previous setup did)" },
              ]}
            />
            {values.upstreamMode === "direct" ? (
              <TextField id={f("directAddress")} label={LABELS.directAddress} hint="empty: host.docker.internal" value={values.directAddress} onChange={set("directAddress")} error={errors.directAddress} mono />
            ) : (
              <TextField id={f("modelPorts")} label={LABELS.modelPorts} hint="the range given to scripts/setup-ssh.sh --model-ports, e.g. 8080-8099" value={values.modelPorts} onChange={set("modelPorts")} error={errors.modelPorts} mono />
            )}
          </>
        ) : null}
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={upsert.isPending} aria-busy={upsert.isPending} data-testid="save-host">
          <span className="spin" data-on={upsert.isPending} aria-hidden="true" />
          {host ? "Save host" : "Add host"}
        </button>
        {onCancel ? (
          <button type="button" className="btn btn-ghost" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}
