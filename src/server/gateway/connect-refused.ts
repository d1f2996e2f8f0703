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

/**
 * Whether a connection to a model's server failed because its host cannot be reached from the gateway: the ssh
 * link is down (the link's AgentError with data `unreachable: "link"`, host-agent/src/link/ssh.ts openTcp), or the
 * host's key does not permit the port (data `refused: "permitopen"`, ssh-tunnel.ts); through the worker's channel
 * socket, EHOSTUNREACH (remote-fleet.ts openChannel); or TCP's EHOSTUNREACH / ENETUNREACH (a direct-mode host).
 * The gateway answers it 502 `host_unreachable` (README, the gateway's error table).
 */
export function cannotReachHost(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; data?: unknown };
  if (e.code === "EHOSTUNREACH" || e.code === "ENETUNREACH") return true;
  const data = typeof e.data === "object" && e.data !== null ? (e.data as { unreachable?: unknown; refused?: unknown }) : {};
  return data.unreachable === "link" || data.refused === "permitopen";
}
