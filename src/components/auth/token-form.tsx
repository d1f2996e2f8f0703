"use client";
/**
 * Exchanges the API token (SYNAPSE_API_TOKEN) for the session cookie:
 * POST /api/session {"token": "..."} as JSON. The token itself is never
 * stored by the page; the cookie is http-only.
 */
import { useEffect, useId, useRef, useState, type FormEvent } from "react";

export function TokenForm({ onSignedIn }: { onSignedIn: () => void }) {
  const id = useId();
  const input = useRef<HTMLInputElement>(null);
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => input.current?.focus(), []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (!token.trim()) {
      setError("Enter the token.");
      input.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const res = await fetch("/api/session", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: token.trim() }),
        credentials: "same-origin",
      });
      if (res.ok) {
        setToken("");
        onSignedIn();
        return;
      }
      const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
      setError(res.status === 401 ? "That token is not the one the app was started with." : (body?.error?.message ?? `Sign-in failed (HTTP ${res.status}).`));
      input.current?.focus();
    } catch {
      setError("Could not reach the app. Is it running?");
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="panel" onSubmit={submit} noValidate aria-labelledby={`${id}-title`} data-testid="token-form" style={{ maxWidth: 520, margin: "32px auto" }}>
      <h2 id={`${id}-title`}>API token required</h2>
      <p className="muted">
        This app was started with <code>SYNAPSE_API_TOKEN</code>. Enter that token to use the dashboard; it is exchanged for a session cookie in this browser.
      </p>
      <div className="field">
        <label htmlFor={`${id}-token`}>Token</label>
        <input
          ref={input}
          id={`${id}-token`}
          type="password"
          autoComplete="current-password"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? `${id}-error` : undefined}
        />
        <p id={`${id}-error`} className="field-error" role={error ? "alert" : undefined}>
          {error}
        </p>
      </div>
      <div className="form-actions">
        <button type="submit" className="btn btn-primary" disabled={busy} aria-busy={busy}>
          <span className="spin" data-on={busy} aria-hidden="true" />
          Sign in
        </button>
      </div>
    </form>
  );
}
