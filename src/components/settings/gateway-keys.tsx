"use client";
/**
 * Gateway API keys (Settings): create one (named, optionally limited to some
 * models), see it once, copy it; list the others by name and prefix; delete
 * (after a confirmation: clients using the key are refused from their next
 * request on).
 * Clients send a key as `Authorization: Bearer <key>` (OPENAI_API_KEY).
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type FormEvent } from "react";
import { errorMessage } from "~/components/api/errors";
import { FormErrors, TextField } from "~/components/form/fields";
import { failureFromError, labelsByPrefix, placeFailure, type FormFailure } from "~/components/form/form-failure";
import { useToast } from "~/components/ui/toaster";
import { useTRPC } from "~/trpc/client";

/** The new key's fields' labels, as the form shows them and as its refusals name them ("models.1" is a Models entry). */
const LABELS = { name: "Name", models: "Models" } as const;
const LAYOUT = { shown: Object.keys(LABELS), label: labelsByPrefix(LABELS), lead: "Not created" };

export function GatewayKeys() {
  const id = useId().replace(/:/g, "");
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const keys = useQuery(trpc.gatewayKeys.list.queryOptions());
  const [name, setName] = useState("");
  const [models, setModels] = useState("");
  const [failure, setFailure] = useState<FormFailure | null>(null);
  const [shown, setShown] = useState<{ name: string; key: string } | null>(null);
  /** The key whose Delete asks for a confirmation. */
  const [confirming, setConfirming] = useState<string | null>(null);
  const refresh = () => queryClient.invalidateQueries({ queryKey: trpc.gatewayKeys.list.queryKey() });
  const create = useMutation(
    trpc.gatewayKeys.create.mutationOptions({
      onSuccess: (k) => {
        setShown({ name: k.name, key: k.key });
        setName("");
        setModels("");
        setFailure(null);
        void refresh();
      },
      onError: (err) => setFailure(failureFromError(err)),
    }),
  );
  const remove = useMutation(
    trpc.gatewayKeys.delete.mutationOptions({
      onSuccess: () => {
        setConfirming(null);
        void refresh();
      },
      onError: (err) => toast.push(`Could not delete the key: ${errorMessage(err)}`, "bad"),
    }),
  );

  function submit(e: FormEvent) {
    e.preventDefault();
    const list = models
      .split(",")
      .map((m) => m.trim())
      .filter(Boolean);
    create.mutate({ name: name.trim(), models: list });
  }

  const { summary, fields: errors, unplaced } = placeFailure(failure, LAYOUT);
  return (
    <section className="panel" style={{ marginTop: 24 }} aria-labelledby={`${id}-title`} data-testid="gateway-keys">
      <h2 id={`${id}-title`}>Gateway API keys</h2>
      <p className="muted" style={{ maxWidth: 760 }}>
        For OpenAI clients of <code>/v1</code> (<code>OPENAI_API_KEY</code>). Required when the app is reachable beyond loopback (<code>SYNAPSE_API_TOKEN</code> set); without it, a client that sends no key is served too, so a key&apos;s model limit binds only the clients that use that key. A key is shown once; only its hash is kept.
      </p>
      {shown ? (
        <div className="notice" data-tone="ok" role="status" data-testid="new-key">
          <div>
            New key <strong>{shown.name}</strong> (copy it now, it is not shown again): <code className="mono" style={{ userSelect: "all" }}>{shown.key}</code>
          </div>
          <button type="button" className="btn btn-sm" onClick={() => setShown(null)}>
            Done
          </button>
        </div>
      ) : null}
      <form onSubmit={submit} noValidate aria-label="New gateway API key">
        <FormErrors message={summary} issues={unplaced} />
        <div className="form-grid">
          <TextField id={`${id}-name`} label={LABELS.name} hint="who or what uses it" value={name} onChange={setName} error={errors.name} required />
          <TextField id={`${id}-models`} label={LABELS.models} hint="comma-separated names or aliases; empty = every model" value={models} onChange={setModels} error={errors.models} mono />
        </div>
        <div className="form-actions">
          <button type="submit" className="btn btn-primary" disabled={create.isPending} aria-busy={create.isPending}>
            Create key
          </button>
        </div>
      </form>
      <ul data-testid="key-list" style={{ listStyle: "none", padding: 0 }}>
        {(keys.data ?? []).map((k) => (
          <li key={k.id} style={{ display: "flex", gap: 12, alignItems: "center", padding: "6px 0" }}>
            <strong>{k.name}</strong>
            <code className="mono">{k.prefix}…</code>
            <span className="muted">{k.models.length ? k.models.join(", ") : "every model"}</span>
            <span className="muted">{k.lastUsedAt ? `last used ${new Date(k.lastUsedAt).toLocaleString()}` : "never used"}</span>
            {confirming === k.id ? (
              <>
                <span role="status">Clients using it are refused from their next request.</span>
                <button type="button" className="btn btn-danger btn-sm" onClick={() => remove.mutate({ id: k.id })} disabled={remove.isPending} aria-busy={remove.isPending}>
                  Yes, delete {k.name}
                </button>
                <button type="button" className="btn btn-sm" onClick={() => setConfirming(null)}>
                  Cancel
                </button>
              </>
            ) : (
              <button type="button" className="btn btn-ghost btn-sm" onClick={() => setConfirming(k.id)} aria-label={`Delete key ${k.name}…`}>
                Delete…
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
