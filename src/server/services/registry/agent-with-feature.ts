/**
 * The link to a host's agent for a call only newer agents answer: opened
 * with a deadline, then the agent's `hello` read (its features), each bounded
 * by `timeoutMs`. The registry's agent calls on save (path check, log move,
 * port holder) share it; each words its own outcome.
 */
import { agentHas, PROTOCOL_VERSION, type AgentFeature } from "synapse-host-agent/protocol";
import type { HostLink } from "synapse-host-agent/link";
import type { LinkPool, PoolHost } from "~/server/services/fleet/links";
import { withDeadline } from "../deadline";

/**
 * `host`'s link when its agent names `feature`; null when it does not (an agent older than the feature).
 * `features`: the agent's hello features when the caller already has them (the fleet does): no hello is asked.
 * Rejects when the link does not open or the hello does not answer within `timeoutMs` (ms), with that error.
 */
export async function linkWithFeature(links: Pick<LinkPool, "get">, host: PoolHost, feature: AgentFeature, timeoutMs: number, features?: readonly string[] | null): Promise<HostLink | null> {
  const link = await withDeadline(links.get(host), timeoutMs, `opening the link to ${host.name}`);
  const named = features ?? (await link.call("hello", { protocolVersion: PROTOCOL_VERSION }, { timeoutMs })).features;
  return agentHas({ features: named ?? undefined }, feature) ? link : null;
}
