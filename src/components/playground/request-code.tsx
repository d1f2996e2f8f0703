"use client";
/**
 * The request as code to copy: curl, JavaScript or Python (OpenAI's client),
 * with the gateway's base URL as this page reaches it and a placeholder for
 * the key (request-snippets.ts). Never the dashboard's session or token.
 */
import { useMemo, useState } from "react";
import type { ChatRequestBody } from "./chat-request";
import { CopyButton } from "./copy-button";
import { curlCommand, javascriptCode, KEY_VARIABLE, pythonCode } from "./request-snippets";
import styles from "./playground.module.css";

const FORMS = [
  { key: "curl", label: "curl", make: curlCommand },
  { key: "js", label: "JavaScript", make: javascriptCode },
  { key: "python", label: "Python", make: pythonCode },
] as const;

export function RequestCode({ body, baseUrl }: { body: ChatRequestBody | null; baseUrl: string }) {
  const [form, setForm] = useState<(typeof FORMS)[number]["key"]>("curl");
  const chosen = FORMS.find((f) => f.key === form) ?? FORMS[0];
  const text = useMemo(() => (body ? chosen.make(baseUrl, body) : ""), [body, baseUrl, chosen]);
  return (
    <section className="panel" aria-labelledby="pg-code-title" data-testid="request-code">
      <div className="panel-head">
        <h2 id="pg-code-title">Request as code</h2>
        {body ? <CopyButton text={text} label={`Copy ${chosen.label}`} /> : null}
      </div>
      <div className={styles.codeTabs} role="group" aria-label="Show the request as">
        {FORMS.map((f) => (
          <button key={f.key} type="button" className="btn btn-sm" aria-pressed={form === f.key} onClick={() => setForm(f.key)}>
            {f.label}
          </button>
        ))}
      </div>
      {body ? (
        <pre className={styles.snippet} data-testid="request-snippet" tabIndex={0} aria-label={`The request as ${chosen.label}`}>
          {text}
        </pre>
      ) : (
        <p className="muted">Choose a model to see the request.</p>
      )}
      <p className="hint muted" style={{ fontSize: "0.8rem", marginTop: 8 }}>
        Set <code>{KEY_VARIABLE}</code> to a gateway API key (Settings → Gateway API keys) or the app&apos;s token.
      </p>
    </section>
  );
}
