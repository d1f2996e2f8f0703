/**
 * TCP connections to a model server's port on an ssh host, each a
 * `direct-tcpip` channel (what `ssh -L` opens) on the host's existing ssh
 * connection: no new handshake per connection, no listener anywhere.
 *
 * Why channels on the link's connection rather than a relay through the
 * agent's protocol (issue 15's design (b)): sshd copies the bytes to the
 * server's port itself, each connection has its own SSH flow-control window
 * (a long stream never stalls the agent's requests or another stream), and
 * nothing is decoded on the way (no JSON, no base64, no extra process hop).
 * It works with any agent version. The price is in the key's
 * authorized_keys line, which must allow those ports, and only those:
 * `restrict,port-forwarding,permitopen="127.0.0.1:P",…,permitlisten=…`
 * (scripts/setup-ssh.sh --model-ports). sshd compares the requested host
 * with the permitopen host literally, so the channel asks for exactly
 * `127.0.0.1` (TUNNEL_HOST), the host setup-ssh.sh writes.
 *
 * Latency (the issue's target: at most 1 ms more than a local model):
 * a request costs one write into the channel and sshd's copy to the port,
 * no handshake (the channel stays open between requests, like a kept-alive
 * socket). Measured through the gateway, tiny model, short completion,
 * paired request by request against a local model on this 2-core machine
 * under load (2026-11-30): +0.55 ms p50. With Nagle on the ssh socket it
 * was +40.6 ms (a window adjust held the next request until the host's
 * delayed ACK), hence ssh.ts's setNoDelay. bench/gateway.ts's gateway-ssh
 * leg prints the figures beside the local gateway's.
 *
 * What the key line cannot close: OpenSSH checks Unix-socket listeners
 * (`ssh -R /path:…`) against no permitlisten, so a key allowed
 * port-forwarding may create them unless the host's sshd_config says
 * `AllowStreamLocalForwarding no` (README, Configure SSH).
 *
 * Errors name what to do: a channel sshd refuses names the port and the
 * setup-ssh.sh argument that allows it; a port nothing listens on says so.
 */
import type { SshLinkConfigInput } from "./ssh-config.ts";
import type { Duplex } from "node:stream";
import type { ClientChannel } from "ssh2";
import { AgentError } from "../protocol.ts";

/** The address the channels ask sshd to connect to, as setup-ssh.sh writes it into permitopen. */
export const TUNNEL_HOST = "127.0.0.1";

/** Open channels per link, beyond which `openTcp` refuses (each holds sshd buffers and a socket on the host). */
export const DEFAULT_MAX_TUNNEL_CHANNELS = 256;
/** How long a channel may take to open (sshd connects to the port first). */
export const DEFAULT_TUNNEL_OPEN_TIMEOUT_MS = 5_000;

/** SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1). */
const ADMINISTRATIVELY_PROHIBITED = 1;
const CONNECT_FAILED = 2;

export interface TcpTunnelOptions {
  /** Deadline for the channel to open (ms). */
  timeoutMs?: number;
}

/** What a link that can reach ports on its host offers (the ssh link; the local link needs none). */
export interface TcpTunnel {
  /**
   * A connection to `127.0.0.1:port` on the host, as a Duplex (an ssh
   * channel). Rejects with an AgentError: UNAVAILABLE when the link is not
   * connected, nothing listens on the port, or too many channels are open;
   * BAD_REQUEST when sshd refuses the channel (the message names the port to
   * allow; `data.refused` is "permitopen"); TIMEOUT past the deadline.
   */
  openTcp(port: number, options?: TcpTunnelOptions): Promise<Duplex>;
  /** Channels open now. */
  readonly openTunnels: number;
  /**
   * What a second connection to the same host needs (ssh.ts SshLink.connectionConfig: address, user, private key,
   * the host keys pinned now); absent on an older link. Holds the private key: for this process only.
   */
  connectionConfig?(): SshLinkConfigInput;
}

type ForwardOut = (srcIP: string, srcPort: number, dstIP: string, dstPort: number, cb: (err: (Error & { reason?: number | string }) | undefined, channel: ClientChannel) => void) => unknown;

/**
 * Opens one direct-tcpip channel on a connected ssh2 client, with a
 * deadline. A channel that opens after the deadline is closed at once.
 */
export function openDirectTcpip(forwardOut: ForwardOut, hostName: string, port: number, timeoutMs: number): Promise<ClientChannel> {
  return new Promise<ClientChannel>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      reject(new AgentError({ code: "TIMEOUT", message: `host '${hostName}' did not open a channel to ${TUNNEL_HOST}:${port} within ${timeoutMs} ms` }));
    }, timeoutMs);
    try {
      forwardOut(TUNNEL_HOST, 0, TUNNEL_HOST, port, (err, channel) => {
        clearTimeout(timer);
        if (settled) {
          channel?.close();
          return;
        }
        settled = true;
        if (err) reject(channelError(hostName, port, err));
        else resolve(closesWhenDestroyed(channel));
      });
    } catch (err) {
      clearTimeout(timer);
      settled = true;
      reject(new AgentError({ code: "UNAVAILABLE", message: `host '${hostName}': cannot open a channel to ${TUNNEL_HOST}:${port}: ${String(err)}` }, { cause: err }));
    }
  });
}

/**
 * Makes `destroy()` end a channel as it ends a socket: nothing more is read
 * from it, and it closes. ssh2's own `destroy()` only sends EOF and
 * CHANNEL_CLOSE, and ssh2 emits 'close' on a direct-tcpip channel only once
 * its readable side has ended, that is once every byte the server sent has
 * been read (ssh2 1.17, lib/utils.js onCHANNEL_CLOSE). A user that destroys a
 * channel it is not reading (a stream whose end it saw before sshd's EOF
 * arrived, a pooled connection dropped, a client gone while the answer was
 * paused for it) would leave those bytes unread: no 'close', and the link's
 * count of open channels (ssh.ts, bounded) would never go down. So the rest
 * is read and dropped, with no 'data' listener left to see it.
 */
function closesWhenDestroyed(channel: ClientChannel): ClientChannel {
  const destroy = channel.destroy.bind(channel);
  channel.destroy = () => {
    destroy();
    channel.removeAllListeners("data");
    channel.resume();
    return channel;
  };
  return channel;
}

function channelError(hostName: string, port: number, err: Error & { reason?: number | string }): AgentError {
  if (err.reason === ADMINISTRATIVELY_PROHIBITED) {
    return new AgentError(
      {
        code: "BAD_REQUEST",
        message:
          `host '${hostName}' refused a channel to ${TUNNEL_HOST}:${port}: its authorized_keys line does not permit port ${port}. ` +
          `On the host, run scripts/setup-ssh.sh --model-ports with a range that includes ${port} (e.g. --model-ports ${port}-${Math.min(65535, port + 19)}), ` +
          `set the same range on the host in the app, or use the host's direct mode`,
        data: { port, refused: "permitopen" },
      },
      { cause: err },
    );
  }
  if (err.reason === CONNECT_FAILED) {
    return new AgentError({ code: "UNAVAILABLE", message: `nothing listens on ${TUNNEL_HOST}:${port} on host '${hostName}' (${err.message})`, data: { port, refused: "connect" } }, { cause: err });
  }
  return new AgentError({ code: "UNAVAILABLE", message: `host '${hostName}': channel to ${TUNNEL_HOST}:${port} failed: ${err.message}` }, { cause: err });
}

/** True for a link that can open TCP channels on its host (the ssh link). */
export function hasTcpTunnel<L extends object>(link: L): link is L & TcpTunnel {
  return typeof (link as Partial<TcpTunnel>).openTcp === "function";
}
