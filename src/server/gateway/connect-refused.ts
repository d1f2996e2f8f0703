/**
 * Whether a connection to a model's server failed because nothing listens on its port: TCP's ECONNREFUSED,
 * or an ssh host whose sshd could not connect the channel (the link's AgentError with data `refused:
 * "connect"`, host-agent/src/link/ssh-tunnel.ts; through the worker's channel socket, ECONNREFUSED again:
 * remote-fleet.ts openChannel).
 */
export function connectRefused(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; data?: unknown };
  return e.code === "ECONNREFUSED" || (typeof e.data === "object" && e.data !== null && (e.data as { refused?: unknown }).refused === "connect");
}
