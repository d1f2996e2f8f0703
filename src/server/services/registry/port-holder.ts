/**
 * Who holds a port on a model's host now, for a model saved with a port
 * (models.ts `portHolder`: the save's warning) and for a restart onto a
 * changed port (fleet.ts: nothing is stopped for a start that would be
 * refused). The agent's own check, the one a start makes before it spawns: a
 * bind probe on 127.0.0.1, where model servers listen, then /proc or lsof for
 * the holder. On this machine it runs here; on an ssh host its agent answers
 * (`portHolder`, agents with "port-holder").
 */
import { describeHolder, portHolder } from "synapse-host-agent/port";
import type { LinkPool, PoolHost } from "~/server/services/fleet/links";
import { linkWithFeature } from "./agent-with-feature";

/** "port 3428 is held by pid 11606 (python3)" (or "… is in use (holder not visible to this user)"); null when `port` (1–65535) is free on 127.0.0.1. */
export async function localPortHolder(port: number): Promise<string | null> {
  const holder = await portHolder(port, "127.0.0.1");
  return holder ? describeHolder(holder) : null;
}

/** Who holds a port on a host: the holder in the agent's words, or null. See hostPortHolder. */
export type PortHolderOf = (host: PoolHost, port: number) => Promise<string | null>;

const DEFAULT_TIMEOUT_MS = 5_000;

/**
 * Who holds `port` (1024–65535) on `host` now, in the agent's words (localPortHolder's); null when it is
 * free, and also when it cannot be known: an agent older than "port-holder", a link that does not open or a
 * call that does not answer within `timeoutMs` (default 5 s each; then the start's own check still refuses a
 * held port). `features`: the agent's hello features when the caller has them (the fleet does), which
 * spares asking for them.
 */
export async function hostPortHolder(links: Pick<LinkPool, "get">, host: PoolHost, port: number, options: { timeoutMs?: number; features?: readonly string[] | null } = {}): Promise<string | null> {
  if (host.linkKind === "local") return localPortHolder(port);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  try {
    const link = await linkWithFeature(links, host, "port-holder", timeoutMs, options.features);
    return link ? (await link.call("portHolder", { port }, { timeoutMs })).holder : null;
  } catch {
    return null;
  }
}

/** A PortHolderOf that asks through the app's host links (hostPortHolder). */
export function agentPortHolder(links: Pick<LinkPool, "get">, options: { timeoutMs?: number } = {}): PortHolderOf {
  return (host, port) => hostPortHolder(links, host, port, options);
}
