"use client";
/**
 * Hosts: the machines that run llama-server. Add an SSH host (the Mac),
 * test the connection (agent, llama-server, platform, the host key it
 * presented) and pin that key.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { errorMessage } from "~/components/api/errors";
import { LlamaServerMissing } from "~/components/fleet/llama-missing";
import { useToast } from "~/components/ui/toaster";
import { useTRPC } from "~/trpc/client";
import { HostForm, type HostItem } from "./host-form";
import { HostMemory } from "./host-memory";
import styles from "./hosts.module.css";
import { describeTest, type HostTestView } from "./host-test";

export function HostsPage() {
  const trpc = useTRPC();
  const hosts = useQuery(trpc.hosts.list.queryOptions());
  const [adding, setAdding] = useState(false);
  return (
    <>
      <div className="page-head">
        <h1>Hosts</h1>
        <div className="actions">
          <button type="button" className="btn btn-primary" onClick={() => setAdding((a) => !a)} aria-expanded={adding} aria-controls="add-host" data-testid="add-host">
            {adding ? "Close" : "Add SSH host"}
          </button>
        </div>
      </div>
      {adding ? (
        <section id="add-host" className="panel" aria-labelledby="add-host-title">
          <h2 id="add-host-title">Add a host</h2>
          <p className="muted" style={{ fontSize: "0.88rem" }}>
            The app reaches a Mac over SSH with a key whose <code>authorized_keys</code> line forces the host agent (<code>scripts/setup-ssh.sh</code> writes it). Save the host, then test the connection and pin the host key it shows.
          </p>
          <HostForm onDone={() => setAdding(false)} onCancel={() => setAdding(false)} />
        </section>
      ) : null}
      {hosts.isError ? (
        <div className="notice" data-tone="bad" role="alert">
          <div>Could not load the hosts: {errorMessage(hosts.error)}</div>
        </div>
      ) : null}
      {hosts.data?.length === 0 ? (
        <div className="empty">
          <h2>No hosts</h2>
          <p>Add the machine that runs llama-server: this one, or a Mac over SSH.</p>
        </div>
      ) : null}
      <ul className={styles.list} aria-busy={hosts.isPending}>
        {hosts.isPending ? (
          <li className="panel">
            <div className="skeleton" style={{ height: 120 }} />
          </li>
        ) : null}
        {hosts.data?.map((h) => <HostCard key={h.id} host={h} />)}
      </ul>
    </>
  );
}

function HostCard({ host }: { host: HostItem }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const toast = useToast();
  const [editing, setEditing] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [result, setResult] = useState<HostTestView | null>(null);
  const test = useMutation(
    trpc.hosts.test.mutationOptions({
      onSuccess: (data) => setResult(describeTest(data)),
      onError: (err) => setResult({ ok: false, error: errorMessage(err), facts: [], fingerprint: null, pinned: false, llamaMissing: false, llamaDetail: null }),
    }),
  );
  const pin = useMutation(
    trpc.hosts.pinKey.mutationOptions({
      onSuccess: () => {
        toast.push(`Pinned the host key of ${host.name}`, "ok");
        void queryClient.invalidateQueries({ queryKey: trpc.hosts.pathKey() });
      },
      onError: (err) => toast.push(`Could not pin the key: ${errorMessage(err)}`, "bad"),
    }),
  );
  const remove = useMutation(
    trpc.hosts.delete.mutationOptions({
      onSuccess: () => {
        toast.push(`Deleted host ${host.name}`, "ok");
        void queryClient.invalidateQueries({ queryKey: trpc.hosts.pathKey() });
      },
      onError: (err) => {
        setConfirmDelete(false);
        toast.push(`Could not delete ${host.name}: ${errorMessage(err)}`, "bad");
      },
    }),
  );

  const ssh = host.linkKind === "ssh";
  const seen = result?.fingerprint ?? null;
  const pinned = host.hostKeyFingerprint;
  const mismatch = seen !== null && pinned !== null && seen !== pinned;
  const titleId = `host-${host.id}-title`;
  const models = host.modelCount;

  return (
    <li className={`panel ${styles.card}`} aria-labelledby={titleId} data-testid="host-card" data-host-name={host.name}>
      <div className="panel-head">
        <h2 id={titleId}>{host.name}</h2>
        <span className="tag">{ssh ? "SSH" : "local"}</span>
        {typeof models === "number" ? <span className="tag">{models} model{models === 1 ? "" : "s"}</span> : null}
        {host.link ? (
          <span className={`tag ${styles.link}`} data-state={host.link.state} title={host.link.error ?? undefined} data-testid="link-state">
            link {host.link.state}
          </span>
        ) : null}
        <div className={styles.cardActions}>
          <button type="button" className="btn btn-sm" onClick={() => test.mutate({ id: host.id })} disabled={test.isPending} aria-busy={test.isPending} data-testid="test-host">
            <span className="spin" data-on={test.isPending} aria-hidden="true" />
            Test connection
          </button>
          <button type="button" className="btn btn-sm" onClick={() => setEditing((e) => !e)} aria-expanded={editing}>
            {editing ? "Close" : "Edit"}
          </button>
          {confirmDelete ? (
            <>
              <button type="button" className="btn btn-sm btn-danger" onClick={() => remove.mutate({ id: host.id })} disabled={remove.isPending}>
                Yes, delete
              </button>
              <button type="button" className="btn btn-sm btn-ghost" onClick={() => setConfirmDelete(false)}>
                Cancel
              </button>
            </>
          ) : (
            <button type="button" className="btn btn-sm btn-danger" onClick={() => setConfirmDelete(true)}>
              Delete…
            </button>
          )}
        </div>
      </div>

      {host.agent?.advice ? (
        <div className="notice" data-tone="warn" role="note" data-testid="agent-update">
          <div>
            <p>
              <strong>Agent {host.agent.agentVersion} is out of date.</strong> {host.agent.advice.charAt(0).toUpperCase() + host.agent.advice.slice(1)}. The app keeps working meanwhile; update the checkout the host runs the agent from.
            </p>
          </div>
        </div>
      ) : null}

      {editing ? (
        <HostForm host={host} onDone={() => setEditing(false)} onCancel={() => setEditing(false)} />
      ) : (
        <dl className="kv">
          {ssh ? (
            <>
              <dt>Address</dt>
              <dd className="mono">
                {host.sshUser ? `${host.sshUser}@` : ""}
                {host.sshHost ?? "—"}:{host.sshPort}
              </dd>
              <dt>Key file</dt>
              <dd className="mono">{host.sshIdentityFile ?? "default"}</dd>
              <dt>Pinned host key</dt>
              <dd className="mono" data-testid="pinned-fingerprint">
                {pinned ?? <span className="muted">not pinned (test the connection, then pin the key it shows)</span>}
              </dd>
              <dt>Gateway</dt>
              <dd className="mono" data-testid="host-upstream">
                {host.upstreamMode === "direct" ? (
                  `direct: ${host.directAddress ?? "host.docker.internal"}:PORT`
                ) : host.modelPorts ? (
                  `through the SSH connection, model ports ${host.modelPorts}`
                ) : (
                  <span className="muted">through the SSH connection; no model ports set (scripts/setup-ssh.sh --model-ports A-B, then the same range here)</span>
                )}
              </dd>
            </>
          ) : null}
          {host.link?.error ? (
            <>
              <dt>Link</dt>
              <dd className="mono" style={{ color: "var(--bad)" }}>
                {host.link.error}
              </dd>
            </>
          ) : null}
          <dt>Model folders</dt>
          <dd className="mono" data-testid="host-model-roots">
            <ModelFolders hostModelsRoot={host.hostModelsRoot} registryModelsRoot={host.registryModelsRoot} scanned={host.agent?.modelRoots ?? null} />
          </dd>
          <dt>llama-server</dt>
          <dd className="mono" data-testid="host-llama-server">
            <LlamaServerBinary configured={host.llamaServerBin} found={host.agent?.llamaServer ?? null} />
          </dd>
        </dl>
      )}
      {editing ? null : <HostMemory memory={host.memory} />}

      <div aria-live="polite">
        {result ? (
          <div className={styles.result} data-testid="host-test-result" data-ok={result.ok}>
            {result.error ? (
              <div className="notice" data-tone="bad">
                <div>
                  <p>
                    <strong>Connection failed.</strong>
                  </p>
                  <pre className="mono">{result.error}</pre>
                </div>
              </div>
            ) : (
              <div className="notice" data-tone="ok">
                <div>
                  <strong>Connected.</strong>
                </div>
              </div>
            )}
            {result.facts.length ? (
              <dl className="kv">
                {result.facts.map(([k, v]) => (
                  <div key={k} style={{ display: "contents" }}>
                    <dt>{k}</dt>
                    <dd className="mono">{v}</dd>
                  </div>
                ))}
              </dl>
            ) : null}
            {result.llamaMissing ? <LlamaServerMissing hostName={host.name} detail={result.llamaDetail} platform={result.platform} /> : null}
            {ssh && seen ? (
              <div className={styles.fingerprint}>
                <p>
                  Host key presented: <code data-testid="seen-fingerprint">{seen}</code>
                </p>
                {mismatch ? (
                  <p className="field-error" role="alert">
                    This is not the pinned key ({pinned}). If the host was reinstalled, check the key on the Mac with <code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</code> before pinning it.
                  </p>
                ) : null}
                {seen !== pinned ? (
                  <button type="button" className="btn btn-sm btn-primary" onClick={() => pin.mutate({ id: host.id, fingerprint: seen })} disabled={pin.isPending} data-testid="pin-key">
                    Pin this key
                  </button>
                ) : (
                  <p className="muted">This key is pinned.</p>
                )}
              </div>
            ) : null}
          </div>
        ) : null}
      </div>
    </li>
  );
}

/**
 * The host's llama-server: the configured path, else what the agent resolved at its last hello
 * (LLAMA_SERVER_BIN, PATH, Homebrew's folders or the build cache) with its version, else why none was found.
 */
/**
 * The folders the host's agent scans for models and serves them from (its hello; on this machine,
 * SYNAPSE_MODEL_ROOTS and the row's models folder), with the registry's path mapping when one is set.
 * Before the agent has answered: the row's folder, or why nothing is known yet.
 */
function ModelFolders({ hostModelsRoot, registryModelsRoot, scanned }: { hostModelsRoot: string | null; registryModelsRoot: string | null; scanned: string[] | null }) {
  const mapping = hostModelsRoot && registryModelsRoot ? <span className="muted"> ({hostModelsRoot} is {registryModelsRoot} in the registry)</span> : null;
  if (scanned && scanned.length > 0) return <>{scanned.join(", ")}{mapping}</>;
  if (hostModelsRoot) return <>{hostModelsRoot}{mapping}</>;
  return <span className="muted">not known until the host&apos;s agent answers</span>;
}

function LlamaServerBinary({ configured, found }: { configured: string | null; found: { path: string | null; version: string | null; error: string | null } | null }) {
  const version = found?.version ? ` (${found.version})` : "";
  if (found?.error) return <span style={{ color: "var(--bad)" }} data-missing="true">{found.error}</span>;
  if (configured) return <>{configured}{found?.path === configured ? version : null}</>;
  if (found?.path) return <>{found.path}{version} <span className="muted">not set here: the agent found it</span></>;
  return <span className="muted">not set: the agent looks in LLAMA_SERVER_BIN, on PATH, in Homebrew&apos;s folders and in npm run llama:build&apos;s cache</span>;
}
