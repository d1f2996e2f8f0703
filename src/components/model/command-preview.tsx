"use client";
/**
 * The exact llama-server argv the agent runs at the model's next start, as a copyable command line; while
 * a server runs with other settings (a saved change not applied yet), what it was started with beside it.
 */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { shellQuote } from "synapse-host-agent/shell-quote";
import { errorMessage } from "~/components/api/errors";
import { useTRPC } from "~/trpc/client";
import styles from "./model.module.css";

/** One flag (and its value) a line, joined with backslashes; each word quoted as the agent's log banner quotes it. */
export function formatCommand(argv: readonly string[]): string {
  const lines: string[] = [];
  let i = 0;
  if (argv.length > 0) lines.push(shellQuote(argv[0]!));
  i = 1;
  while (i < argv.length) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith("-") && next !== undefined && (!next.startsWith("-") || /^-\d/.test(next))) {
      lines.push(`  ${shellQuote(a)} ${shellQuote(next)}`);
      i += 2;
    } else {
      lines.push(`  ${shellQuote(a)}`);
      i += 1;
    }
  }
  return lines.join(" \\\n");
}

/** `pid`: the server's process as the page knows it; a new one (a restart, a stop) asks again what runs. */
export function CommandPreview({ modelId, pid }: { modelId: string; pid: number | null }) {
  const trpc = useTRPC();
  const preview = useQuery(trpc.models.commandPreview.queryOptions({ id: modelId }));
  const { refetch } = preview;
  const seenPid = useRef(pid);
  useEffect(() => {
    if (seenPid.current === pid) return;
    seenPid.current = pid;
    void refetch();
  }, [pid, refetch]);
  const [copied, setCopied] = useState(false);
  const data = preview.data;
  const argv = data ? [data.binary, ...data.args] : null;
  const text = argv ? formatCommand(argv) : "";
  const running = data?.running ?? null;
  const pending = running !== null && !running.upToDate;

  async function copy() {
    try {
      await navigator.clipboard.writeText(data?.commandLine ?? "");
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      setCopied(false);
    }
  }

  return (
    <section className="panel" aria-labelledby="cmd-title">
      <div className="panel-head">
        <h2 id="cmd-title">Command line</h2>
        <button type="button" className="btn btn-sm" onClick={copy} disabled={!argv}>
          {copied ? "Copied" : "Copy"}
        </button>
      </div>
      <p className="muted" style={{ fontSize: "0.85rem" }}>
        Exactly what the host agent runs at the next start (an argument list, never a shell string), with the global defaults filled in.
        {running?.upToDate ? ` The running server (pid ${running.pid}) was started with exactly this.` : ""}
      </p>
      {preview.isError ? (
        <p className="field-error" role="alert">
          {errorMessage(preview.error)}
        </p>
      ) : (
        <>
          {pending ? (
            <>
              <p className="field-error" role="status" data-testid="command-pending" style={{ margin: "0 0 8px" }}>
                Saved settings not applied yet: the running server (pid {running.pid}) was started with other settings. Restart it to apply them.
              </p>
              <h3 style={{ fontSize: "0.9rem", margin: "0 0 4px" }}>Running with</h3>
              {running.args ? (
                <pre className={styles.command} data-testid="command-running">
                  {formatCommand([data!.binary, ...running.args])}
                </pre>
              ) : (
                <p className="muted" style={{ fontSize: "0.82rem" }} data-testid="command-running">
                  Not reported by this host&apos;s agent (an agent update shows it).
                </p>
              )}
              <h3 style={{ fontSize: "0.9rem", margin: "12px 0 4px" }}>Next start (restart to apply)</h3>
            </>
          ) : null}
          <pre className={styles.command} data-testid="command-preview" aria-busy={preview.isPending}>
            {preview.isPending ? "…" : text}
          </pre>
          {data?.contextNote ? (
            <p className="muted" style={{ fontSize: "0.82rem", margin: "8px 0 0" }} data-testid="context-note">
              Context: {data.contextNote}, so <code>--ctx-size</code> is the model&apos;s own (a larger context needs an explicit size).
            </p>
          ) : null}
          {data?.contextWarning ? (
            <p className="muted" style={{ fontSize: "0.82rem", margin: "8px 0 0" }} data-testid="context-warning">
              Context: {data.contextWarning}.
            </p>
          ) : null}
          {data?.envNames.length ? (
            <p className="muted" style={{ fontSize: "0.82rem", margin: "8px 0 0" }}>
              Environment: {data.envNames.map((n) => <code key={n}>{n}</code>)} (values hidden)
            </p>
          ) : null}
          {data?.llamaServer?.version ? (
            <p className="muted" style={{ fontSize: "0.82rem", margin: "8px 0 0" }}>
              llama-server {data.llamaServer.version} on the host.
            </p>
          ) : null}
          {data?.note ? (
            <p className="field-error" style={{ margin: "8px 0 0" }}>
              {data.note}
            </p>
          ) : null}
        </>
      )}
    </section>
  );
}
