/**
 * Connections to model servers on ssh hosts: one keep-alive http.Agent per
 * host whose sockets are ssh channels on that host's existing connection
 * (GatewayFleet.connect → the link's direct-tcpip channel to
 * 127.0.0.1:PORT on the host; host-agent/src/link/ssh-tunnel.ts says why
 * channels and not a relay through the agent). The upstream forwarder
 * (upstream.ts) uses such an agent in place of its TCP one, so the request
 * path, streaming, disconnects and deadlines are the same as for a local
 * model; a channel is kept open between requests like a kept-alive socket,
 * so a request after the first opens nothing.
 *
 * Bounds: `maxSockets` channels per model server, and the link's own bound
 * on open channels per host; opening a channel has a deadline
 * (`openTimeoutMs`), and upstream.ts's connect deadline covers the wait too.
 */
import http from "node:http";
import type { Duplex } from "node:stream";
import type { GatewayFleet } from "./fleet-port";
import { FREE_SOCKET_TIMEOUT_MS } from "./upstream";

export interface SshUpstreamOptions {
  /** Channels kept per model server (like upstream.ts's maxSockets). Default 64. */
  maxSockets?: number;
  /** Deadline for a channel to open (ms). Default 5000. */
  openTimeoutMs?: number;
}

export interface SshUpstream {
  /** The http.Agent whose connections are channels on host `hostId`'s ssh connection. */
  agentFor(hostId: string): http.Agent;
  close(): void;
}

/**
 * What http's client and Agent call on a socket beyond a Duplex's own
 * methods. An ssh channel has no TCP socket under it: Nagle, keepalive and
 * ref/unref are the ssh connection's concern (no-ops here); the idle
 * timeout is kept here, counting bytes both ways, as net.Socket counts them;
 * an end from the server closes the channel (no half-open sockets).
 */
export interface ChannelSocket extends Duplex {
  /** The idle timeout in ms (0: none), as net.Socket's. */
  timeout: number;
  connecting: boolean;
  setTimeout(msecs: number, callback?: () => void): this;
  setNoDelay(): this;
  setKeepAlive(): this;
  ref(): this;
  unref(): this;
}

export function channelAsSocket(channel: Duplex): ChannelSocket {
  const ch = channel as ChannelSocket;
  let timer: NodeJS.Timeout | null = null;
  let ms = 0;
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (ms > 0) {
      timer = setTimeout(() => ch.emit("timeout"), ms);
      timer.unref();
    }
  };
  // Activity both ways re-arms the timer (push: bytes from the server; write: bytes to it).
  const push = ch.push.bind(ch);
  ch.push = (chunk: unknown, encoding?: BufferEncoding) => {
    if (timer) arm();
    return push(chunk, encoding);
  };
  const write = ch.write.bind(ch) as (...args: unknown[]) => boolean;
  ch.write = ((...args: unknown[]) => {
    if (timer) arm();
    return write(...args);
  }) as typeof ch.write;
  ch.timeout = 0;
  ch.connecting = false;
  ch.setTimeout = (msecs: number, callback?: () => void) => {
    ms = msecs;
    ch.timeout = msecs;
    if (callback) {
      if (msecs === 0) ch.removeListener("timeout", callback);
      else ch.once("timeout", callback);
    }
    arm();
    return ch;
  };
  ch.setNoDelay = () => ch;
  ch.setKeepAlive = () => ch;
  ch.ref = () => ch;
  ch.unref = () => ch;
  // The server closed its side (llama-server ends a connection after some answers): close ours too, as a
  // net.Socket without allowHalfOpen does. An ssh channel is half-open by default, and sshd closes it
  // only when both sides have, so a kept-alive channel would otherwise look usable to the Agent while
  // nothing can answer on it. Marked destroyed at once: the Agent skips it until 'close' removes it.
  ch.once("end", () => {
    ch.destroy();
    ch.destroyed = true;
  });
  ch.once("close", () => {
    ms = 0;
    if (timer) clearTimeout(timer);
    timer = null;
  });
  return ch;
}

export function createSshUpstream(fleet: Pick<GatewayFleet, "connect">, options: SshUpstreamOptions = {}): SshUpstream {
  const agents = new Map<string, http.Agent>();
  const openTimeoutMs = options.openTimeoutMs ?? 5_000;
  return {
    agentFor(hostId) {
      let agent = agents.get(hostId);
      if (agent) return agent;
      agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 64, maxFreeSockets: 16, scheduling: "lifo", timeout: FREE_SOCKET_TIMEOUT_MS });
      // http's Agent accepts a createConnection that answers through the callback (its `oncreate`).
      (agent as unknown as { createConnection: (o: { port?: number | string | null }, cb: (err: Error | null, s?: Duplex) => void) => undefined }).createConnection = (o, cb) => {
        const port = Number(o.port);
        if (!fleet.connect) {
          cb(new Error(`host ${hostId} is reached over ssh, and this gateway was given no way to open channels to it`));
          return undefined;
        }
        fleet.connect(hostId, port, { timeoutMs: openTimeoutMs }).then(
          (channel) => cb(null, channelAsSocket(channel)),
          (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
        );
        return undefined;
      };
      agents.set(hostId, agent);
      return agent;
    },
    close() {
      for (const a of agents.values()) a.destroy();
      agents.clear();
    },
  };
}
