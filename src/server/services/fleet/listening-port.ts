/**
 * Which port a model's server listens on. The registry's `Model.port` is what
 * the next start uses; a port edited while the server runs applies at its
 * next (re)start, as every other setting does. Until then, whatever talks to
 * the running server (the gateway's upstream, the metrics reads, status's
 * PORT) uses the port its process has: `ServerState.port`, as the agent
 * reported it (ServerStatus.port) with the process's state. Alive states are
 * written from agent reports only, so a live row's port is its process's.
 *
 * Pure, with only the shared state names: the gateway's bundle holds it
 * (scripts/build-gateway.mjs).
 */
import { isAlive } from "synapse-host-agent/server-states";

/** A model's registry port and its recorded server state (null: never started). */
export interface PortFacts {
  /** The registry's port: what the next start uses. */
  port: number;
  server: { observed: string; port: number | null } | null;
}

/** The port the model's running process listens on (1–65535); the registry's when no process runs. */
export function listeningPort(m: PortFacts): number {
  return m.server && isAlive(m.server.observed) && m.server.port !== null ? m.server.port : m.port;
}

/** The registry's port when it differs from the running process's: the port the next start uses; null otherwise. */
export function pendingPort(m: PortFacts): number | null {
  const now = listeningPort(m);
  return now === m.port ? null : m.port;
}
