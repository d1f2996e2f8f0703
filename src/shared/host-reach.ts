/**
 * Whether a model's host can be reached now, for every reader of the status view: the fleet row (its
 * state cell, uptime and tok/s), the fleet's summary line and the CLI's status. While a host's link is
 * down the row's state is the last one the app was told, not what runs now. Plain data, no React (the
 * CLI and the server import it).
 */

/** A status row's `link` (ServerView.link). */
export interface LinkView {
  /** The host's link kind: "local" (always reachable) or "ssh". */
  kind: string;
  /** The link's state (connecting, connected, disconnected, failed, closed); null: no link opened yet. */
  state: string | null;
  /** Why it is not connected; null while connected. */
  error: string | null;
  /** When the app lost the link (ISO), while it is not back; null: connected, or never connected since the app started. */
  unreachableSince?: string | null;
}

/**
 * True when the host's link is down: disconnected (retrying), failed for good, closed, or connecting
 * again after it was lost. False for a local host, a connected link, no link yet, and the first
 * connection since the app started (the state is then the last recorded, and the link not yet judged).
 */
export function hostUnreachable(link: LinkView | null | undefined): boolean {
  if (!link || link.kind !== "ssh" || link.state === null || link.state === "connected") return false;
  return link.state !== "connecting" || Boolean(link.unreachableSince);
}

/**
 * What a row's state cell adds under its badge while the host is unreachable: "last known · host mac unreachable",
 * and a command recorded that waits for the host (recordedForHost): "… · restart recorded, made when it is back".
 */
export function lastKnownText(host: string, recorded: "stop" | "restart" | null = null): string {
  return `last known · host ${host} unreachable${recorded ? ` · ${recordedText(recorded)}` : ""}`;
}

/** "stop recorded, made when it is back", as the row and `synapse status` add it for a command that waits for the host. */
export function recordedText(recorded: "stop" | "restart"): string {
  return `${recorded} recorded, made when it is back`;
}

/**
 * The command recorded for a model that waits for its host to be reachable again: a stop (stopRecorded) or a
 * Restart by hand (the status view's restartPending); null when none.
 */
export function recordedForHost(row: { state: string; desired?: string | null; restartPending?: boolean }): "stop" | "restart" | null {
  if (stopRecorded(row)) return "stop";
  return row.restartPending && row.desired !== "stopped" ? "restart" : null;
}

/**
 * True when a stop was recorded for a model that its last known state says runs (wanted stopped, still ready,
 * starting …): on a host that cannot be reached, the stop is made once it is back (Operations.issueStop's
 * pending stop). A trial's `synapse stop` said so once, then nothing on the page or in `synapse status` did.
 */
export function stopRecorded(row: { state: string; desired?: string | null }): boolean {
  return row.desired === "stopped" && ["ready", "unhealthy", "starting"].includes(row.state);
}

/**
 * One line for a host whose link is down, as `synapse status` prints it under its table:
 * "host mac is unreachable since 09:12:04 (link disconnected: …): alpha, beta show their last known state".
 * `since` formatted by the caller (a clock time); null when unknown.
 */
export function unreachableHostLine(host: string, link: LinkView, models: readonly string[], since: string | null): string {
  const why = `link ${link.state ?? "not open"}${link.error ? `: ${link.error}` : ""}`;
  return `host ${host} is unreachable${since ? ` since ${since}` : ""} (${why}): ${models.join(", ")} ${models.length === 1 ? "shows its" : "show their"} last known state; what runs there now is not known`;
}
