/**
 * A stop that left a server's port held (the agent's `failed`, "stop incomplete: …"): its holder may live on,
 * so a later stop of that model is the agent's to make (it looks for the holder again), not one this app
 * records as done by itself (Operations.stopFinding).
 *
 * An agent with the `stop-incomplete` feature says so as data (`ServerStatus.stopIncomplete`, null on every
 * other status), and that is all this app reads of it. An older agent sends no such field: only then are its
 * reason's words read, which are the same agent code's (managed-server.ts, describeHeldPort in end-server.ts).
 */
import type { ServerStatus, StopIncomplete } from "synapse-host-agent/protocol";

/**
 * The words of an older agent: "stop incomplete: port P still held by pid N (name)", or "… port P still held
 * (the holder is not visible to this user)".
 */
const OLDER_AGENT_WORDS = /^stop incomplete: port (\d+) still held(?: by pid (\d+)(?: \(([^\n]*)\))?)?/;

/**
 * What a status says of a stop that left the port held: the port and its holder (`holderPid` and
 * `holderCommand` null when unknown), or null when it says no such thing. A `failed` status only: a stop that
 * left the port held always ends `failed`. The status's `stopIncomplete` when the agent sent one (null
 * included: it said no); from an agent without the field (undefined), the reason's words.
 */
export function stopIncompleteOf(status: Pick<ServerStatus, "state" | "reason" | "stopIncomplete">): StopIncomplete | null {
  if (status.state !== "failed") return null;
  if (status.stopIncomplete !== undefined) return status.stopIncomplete;
  const m = OLDER_AGENT_WORDS.exec(status.reason ?? "");
  if (!m) return null;
  return { port: Number(m[1]), holderPid: m[2] === undefined ? null : Number(m[2]), holderCommand: m[3] ?? null };
}

/** As the ServerState column stores it (JSON text); null for none. */
export function stopIncompleteColumn(value: StopIncomplete | null): string | null {
  return value === null ? null : JSON.stringify(value);
}
