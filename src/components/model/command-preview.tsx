"use client";
/** The exact llama-server argv the agent will run, shown as a copyable command line. */
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
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

export function CommandPreview({ modelId }: { modelId: string }) {
  const trpc = useTRPC();
  const preview = useQuery(trpc.models.commandPreview.queryOptions({ id: modelId }));
  const [copied, setCopied] = useState(false);
  const data = preview.data;
  const argv = data ? [data.binary, ...data.args] : null;
  const text = argv ? formatCommand(argv) : "";

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
        Exactly what the host agent runs (an argument list, never a shell string), with the global defaults filled in.
      </p>
      {preview.isError ? (
        <p className="field-error" role="alert">
          {errorMessage(preview.error)}
        </p>
      ) : (
        <>
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
