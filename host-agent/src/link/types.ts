/**
 * `HostLink`: how the control plane reaches one host's agent, whatever the
 * transport. It is an `AgentApi` (call + events) plus connection state.
 *
 * Contract shared by every implementation (and checked by link-behaviour.ts):
 * - `call` resolves with the method's result, parsed by the protocol's result
 *   schema, or rejects with an `AgentError`: the agent's own error as sent,
 *   `TIMEOUT` when the call's deadline passed, `UNAVAILABLE` when the link is
 *   down, dropped while the call was pending, or closed.
 * - A call is sent at most once. The link never retries on its own; a caller
 *   that retries a `start` relies on the agent's idempotency per id + spec.
 * - Events missed while the link was down are not replayed: on a transition
 *   to `connected`, ask for `status`.
 */
import type { AgentApi, AgentError } from "../protocol.ts";

export type LinkKind = "local" | "ssh";

/**
 * connecting: a connection attempt is under way (calls wait for it);
 * connected: calls go straight through;
 * disconnected: the last attempt failed or the connection dropped; a retry is scheduled (calls fail fast);
 * failed: a condition that retrying cannot fix (a changed host key); nothing more is attempted;
 * closed: `close()` was called.
 */
export type LinkState = "connecting" | "connected" | "disconnected" | "failed" | "closed";

export interface LinkStateChange {
  host: string;
  state: LinkState;
  previous: LinkState;
  /** Why the link is not connected (for disconnected / failed). */
  error?: AgentError;
  /** When disconnected: milliseconds until the next attempt. */
  retryInMs?: number;
  /** Consecutive failed attempts so far. */
  attempt?: number;
  /**
   * When connecting: the agent's session ended and the agent is being started again on the same connection
   * (`error` says how it ended). The connection's channels to model servers are kept: nothing answered
   * through them is lost.
   */
  agentRestart?: boolean;
  /**
   * When disconnected: the connection that ended had been up (the link was connected through it), so whatever
   * ran through it (channels to model servers) ended with it, even when the link was `connecting` just before
   * (an agent being started again on it, `agentRestart`, when the connection went).
   */
  connectionLost?: boolean;
}

/** The least time between two connection attempts that retryNow begins ahead of the backoff (ms). */
export const EARLY_RETRY_MIN_GAP_MS = 5_000;

export type LinkLogLevel = "debug" | "info" | "warn" | "error";
export type LinkLog = (level: LinkLogLevel, msg: string, fields?: Record<string, unknown>) => void;

export interface HostLink extends AgentApi {
  readonly kind: LinkKind;
  /** The host's name, used in every error message. */
  readonly host: string;
  readonly state: LinkState;
  onStateChange(listener: (change: LinkStateChange) => void): () => void;
  /**
   * Why the link is not connected (the last attempt's or drop's error, naming the host), and when it next tries
   * (epoch ms; null when it does not: failed, closed). Null while connected or connecting. Optional: a local link
   * has no connection to lose.
   */
  readonly down?: { error: string; nextAttemptAt: number | null } | null;
  /**
   * A link that is down and waiting out its reconnect backoff tries again now, unless an attempt began less than
   * EARLY_RETRY_MIN_GAP_MS ago (a flood of callers makes one handshake per host every few seconds, not one each).
   * Returns whether an attempt began. Optional: a local link is never down.
   */
  retryNow?(): boolean;
  /** Fails pending calls with UNAVAILABLE, ends the connection; idempotent. */
  close(): Promise<void>;
}

/** Default sink: one JSON object a line on stderr, like the agent's own logs. */
export const stderrLinkLog: LinkLog = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, component: "host-link", ...fields })}\n`);
};

export const silentLinkLog: LinkLog = () => {};

/**
 * Resolves once `link` is no longer `connecting` (connected, or down: whatever for), or after `timeoutMs` (ms);
 * at once when it is not connecting now. Never rejects.
 */
export function leftConnecting(link: Pick<HostLink, "state" | "onStateChange">, timeoutMs: number): Promise<void> {
  if (link.state !== "connecting") return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      off();
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    const off = link.onStateChange((c) => c.state !== "connecting" && done());
  });
}
