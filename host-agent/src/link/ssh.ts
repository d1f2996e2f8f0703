/**
 * The ssh link: ONE persistent ssh2 connection per host, one exec channel
 * running the forced command `agent` (the wrapper starts
 * `host-agent serve --stdio`), JSON lines both ways, requests matched by id
 * and many in flight. No handshake per call.
 *
 * - The host key is checked during key exchange, before authentication, so a
 *   changed key is refused before anything runs on the host; that is terminal
 *   (state `failed`), because retrying cannot make a wrong key right.
 * - SSH keepalives detect a dead peer; a drop fails every pending call with
 *   UNAVAILABLE naming the host, then the link reconnects with capped,
 *   jittered exponential backoff.
 * - Every call has a deadline. Calls are written once and never re-sent: the
 *   agent's `start` is idempotent per id + spec, so a caller's retry after a
 *   reconnect cannot start a second process.
 */
// Default import: ssh2 is CommonJS, and this must load under plain Node ESM as well as bundlers.
import type { Duplex } from "node:stream";
import ssh2, { type ClientChannel, type ConnectConfig } from "ssh2";
import {
  AgentError,
  PROTOCOL_VERSION,
  agentEventSchema,
  replySchema,
  type AgentEvent,
  type Method,
  type Params,
  type Result,
} from "../protocol.ts";
import { fingerprintOf, keyTypeOf, knownHostsLine } from "./host-key.ts";
import { parseSshLinkConfig, type SshLinkConfig, type SshLinkConfigInput } from "./ssh-config.ts";
import { DEFAULT_MAX_TUNNEL_CHANNELS, DEFAULT_TUNNEL_OPEN_TIMEOUT_MS, openDirectTcpip, type TcpTunnel, type TcpTunnelOptions } from "./ssh-tunnel.ts";
import { EARLY_RETRY_MIN_GAP_MS, leftConnecting, stderrLinkLog, type HostLink, type LinkLog, type LinkState, type LinkStateChange } from "./types.ts";
import { LineSplitter, MAX_REQUEST_LINE_BYTES, closedError, errorFromWire, parseResult, withDeadline } from "./wire.ts";

export interface TrustedHostKey {
  host: string;
  port: number;
  fingerprint: string;
  keyType: string | null;
  /** Ready to append to a known_hosts file. */
  knownHostsLine: string;
}

export interface SshLinkOptions {
  log?: LinkLog;
  /**
   * Called when trustOnFirstUse accepts a key; persist it as the pin. The
   * connection waits for it; if it throws, the key is refused.
   */
  onHostKeyTrusted?: (key: TrustedHostKey) => void | Promise<void>;
  /** Bound on open direct-tcpip channels (openTcp); default DEFAULT_MAX_TUNNEL_CHANNELS. */
  maxTunnelChannels?: number;
  /**
   * A link for one exchange (a connection test): it never reconnects, nor starts its agent again. A session lost,
   * or never made, ends it `failed` with the reason, and its log says "one-shot link ended; not reconnecting",
   * never "will reconnect".
   */
  oneShot?: boolean;
  /**
   * A link for channels to the host's ports alone (openTcp): the connection is made and its host key checked as
   * for any link, but no agent is started on it: one short session asks the forced command for its `channels` verb
   * (so that sshd turns Nagle off: nagleOffOnHost; nothing runs), and the link is connected. `call` fails at once (there is no agent to answer). Used by
   * the gateway's worker thread for a connection of its own to each ssh host (src/server/gateway/worker-tunnels.ts).
   */
  tunnelOnly?: boolean;
}

interface PendingCall {
  id: number;
  method: Method;
  line: string;
  resolve: (value: unknown) => void;
  reject: (err: AgentError) => void;
}

interface Session {
  epoch: number;
  client: InstanceType<typeof ssh2.Client>;
  channel: ClientChannel | null;
  lost: boolean;
  /** The ssh2 client emitted 'end' or 'close': the connection is going, whatever a channel's close says. */
  ending: boolean;
  /** The agent on the current channel answered its hello (the link was connected through it). */
  agentUp: boolean;
  /** The agent was started again on this connection at least once (agentEnded). */
  agentRestarted: boolean;
  /** When the current agent answered hello (epoch ms; 0: not yet). */
  agentUpAt: number;
  /** The link was connected through this connection at least once (channels to model servers may be open on it). */
  wasUp: boolean;
  /** The ssh2 client emitted 'close' (its socket is gone). */
  closed: Promise<void>;
}

/**
 * An agent started again on the same connection that ends sooner than this after it answered hello is not
 * started again there: the link drops the connection and reconnects with its backoff (an agent that keeps
 * ending must not be restarted in a tight loop, however slowly it starts).
 */
export const AGENT_RESTART_MIN_GAP_MS = 5_000;

/** The forced command's verb a tunnel-only link runs once per connection (nagleOffOnHost; scripts/ssh-wrapper.sh). */
export const TUNNEL_SESSION_COMMAND = "channels";

const STDERR_LINE_MAX = 4096;

export function createSshLink(input: SshLinkConfigInput, options: SshLinkOptions = {}): HostLink {
  const config: SshLinkConfig = parseSshLinkConfig(input);
  return new SshLink(config, options);
}

class SshLink implements HostLink, TcpTunnel {
  readonly kind = "ssh" as const;
  readonly host: string;
  private current: LinkState = "connecting";
  private readonly log: LinkLog;
  private readonly stateListeners = new Set<(c: LinkStateChange) => void>();
  private readonly eventListeners = new Set<(e: AgentEvent) => void>();
  /** Written to the channel, waiting for a reply. */
  private readonly inFlight = new Map<number, PendingCall>();
  /** Not yet written: waiting for the connection being set up. */
  private readonly queued = new Map<number, PendingCall>();
  private readonly pins: Set<string>;
  private nextId = 1;
  private epoch = 0;
  private session: Session | null = null;
  private failedAttempts = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private nextRetryAt = 0;
  /** When the last connection attempt began (epoch ms): retryNow makes none within EARLY_RETRY_MIN_GAP_MS of it. */
  private lastAttemptAt = 0;
  private lastError: AgentError | null = null;
  private closing: Promise<void> | null = null;
  private tunnels = 0;

  constructor(
    private readonly config: SshLinkConfig,
    private readonly options: SshLinkOptions,
  ) {
    this.host = config.name;
    this.log = options.log ?? stderrLinkLog;
    this.pins = new Set(config.hostKeyFingerprints);
    this.connect();
  }

  get state(): LinkState {
    return this.current;
  }

  get down(): { error: string; nextAttemptAt: number | null } | null {
    if (this.current === "connected" || this.current === "connecting") return null;
    const error = this.lastError?.message ?? (this.current === "closed" ? `the link to host '${this.host}' is closed` : "not connected");
    return { error, nextAttemptAt: this.current === "disconnected" ? this.nextRetryAt : null };
  }

  retryNow(): boolean {
    // Only a link waiting out its backoff: connecting is under way, failed is for good (a refused host key), closed is closed.
    if (this.current !== "disconnected" || Date.now() - this.lastAttemptAt < EARLY_RETRY_MIN_GAP_MS) return false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.log("info", "link reconnecting ahead of its backoff (asked for)", { host: this.host, wasDueInMs: Math.max(0, this.nextRetryAt - Date.now()) });
    this.connect();
    return true;
  }

  private get where(): string {
    return `${this.config.username}@${this.config.host}:${this.config.port}`;
  }

  onStateChange(listener: (c: LinkStateChange) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  onEvent(listener: (e: AgentEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  call<M extends Method>(method: M, params: Params<M>, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Result<M>> {
    if (this.current === "closed") return Promise.reject(closedError(this.host));
    if (this.options.tunnelOnly) return Promise.reject(new AgentError({ code: "BAD_REQUEST", message: `the link to host '${this.host}' carries channels to its ports only (tunnelOnly): it has no agent to call ${method}` }));
    if (this.current === "failed" || this.current === "disconnected") {
      const last = this.lastError;
      const retry = this.current === "disconnected" ? ` (next attempt in ${Math.max(0, this.nextRetryAt - Date.now())} ms)` : "";
      return Promise.reject(
        new AgentError({ code: "UNAVAILABLE", message: `host '${this.host}' is unreachable${retry}: ${last?.message ?? "not connected"}` }, { cause: last ?? undefined }),
      );
    }
    const id = this.nextId++;
    let line: string;
    try {
      line = JSON.stringify({ type: "request", id, method, params: params ?? {} });
    } catch (err) {
      return Promise.reject(new AgentError({ code: "BAD_REQUEST", message: `params for ${method} cannot be sent as JSON: ${String(err)}` }, { cause: err }));
    }
    if (Buffer.byteLength(line) > MAX_REQUEST_LINE_BYTES) {
      return Promise.reject(new AgentError({ code: "BAD_REQUEST", message: `request for ${method} is larger than ${MAX_REQUEST_LINE_BYTES} bytes` }));
    }
    const body = new Promise<unknown>((resolve, reject) => {
      const call: PendingCall = { id, method, line, resolve, reject };
      if (this.current === "connected") this.send(call);
      else this.queued.set(id, call);
    });
    const timeoutMs = options?.timeoutMs ?? this.config.callTimeoutMs;
    return withDeadline(body, {
      host: this.host,
      method,
      timeoutMs,
      signal: options?.signal,
      onGiveUp: () => {
        // The request may already be running on the host; its late reply is dropped.
        this.queued.delete(id);
        this.inFlight.delete(id);
      },
    }).then((raw) => parseResult(this.host, method, raw));
  }

  get openTunnels(): number {
    return this.tunnels;
  }

  /** A direct-tcpip channel to 127.0.0.1:port on the host, on this link's connection (ssh-tunnel.ts). */
  async openTcp(port: number, options: TcpTunnelOptions = {}): Promise<Duplex> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TUNNEL_OPEN_TIMEOUT_MS;
    const t0 = Date.now();
    // Being set up (the app just started, or a reconnect): wait for it within the same deadline, as calls do.
    if (this.current === "connecting") await leftConnecting(this, timeoutMs);
    const session = this.session;
    if (this.current !== "connected" || !session || session.lost) {
      const last = this.lastError;
      // data.unreachable: the gateway answers 502 host_unreachable with this message (src/server/gateway/connect-refused.ts).
      throw new AgentError({ code: "UNAVAILABLE", message: `host '${this.host}' is unreachable (link ${this.current}): ${last?.message ?? "not connected"}`, data: { unreachable: "link" } }, { cause: last ?? undefined });
    }
    const max = this.options.maxTunnelChannels ?? DEFAULT_MAX_TUNNEL_CHANNELS;
    if (this.tunnels >= max) {
      throw new AgentError({ code: "UNAVAILABLE", message: `host '${this.host}' has ${this.tunnels} channels to model servers open, the most allowed (${max}); try again when some end` });
    }
    // Counted from the request: channels being opened hold sshd resources too.
    this.tunnels += 1;
    let counted = true;
    const release = () => {
      if (counted) {
        counted = false;
        this.tunnels -= 1;
      }
    };
    try {
      const channel = await openDirectTcpip(session.client.forwardOut.bind(session.client), this.host, port, Math.max(1, timeoutMs - (Date.now() - t0)));
      // ssh2 emits 'close' once the channel is closed both ways (or the connection ends).
      channel.once("close", release);
      return channel;
    } catch (err) {
      release();
      throw err;
    }
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.setState("closed");
      const err = closedError(this.host);
      this.failAll(err);
      const session = this.session;
      this.session = null;
      if (session) {
        session.lost = true;
        await endClient(session, 2000);
      }
    })();
    return this.closing;
  }

  // ---- connection -------------------------------------------------------

  private connect(): void {
    this.retryTimer = null;
    if (this.current === "closed" || this.current === "failed") return;
    this.lastAttemptAt = Date.now();
    this.setState("connecting");
    const epoch = ++this.epoch;
    const client = new ssh2.Client();
    const session: Session = { epoch, client, channel: null, lost: false, ending: false, agentUp: false, agentRestarted: false, agentUpAt: 0, wasUp: false, closed: new Promise((resolve) => client.once("close", () => resolve())) };
    client.once("end", () => {
      session.ending = true;
    });
    client.once("close", () => {
      session.ending = true;
    });
    this.session = session;
    let hostKeyError: AgentError | null = null;

    const hostVerifier = (key: Buffer, verify: (ok: boolean) => void): void => {
      const fingerprint = fingerprintOf(key);
      if (this.pins.has(fingerprint)) return verify(true);
      if (this.pins.size > 0) {
        hostKeyError = new AgentError({
          code: "UNAVAILABLE",
          message:
            `host key of '${this.host}' (${this.config.host}:${this.config.port}) is ${fingerprint}, but ${[...this.pins].join(" or ")} is pinned; ` +
            `refused before authenticating, nothing ran. If the host was reinstalled, check and re-pin its key.`,
          data: { fingerprint, pinned: [...this.pins] },
        });
        return verify(false);
      }
      // No pin: the config schema only allows this with trustOnFirstUse.
      const trusted: TrustedHostKey = {
        host: this.config.host,
        port: this.config.port,
        fingerprint,
        keyType: keyTypeOf(key),
        knownHostsLine: knownHostsLine(this.config.host, this.config.port, key),
      };
      Promise.resolve()
        .then(() => this.options.onHostKeyTrusted?.(trusted))
        .then(
          () => {
            this.pins.add(fingerprint);
            this.log("warn", "trusted a host key on first use", { host: this.host, fingerprint });
            verify(true);
          },
          (err: unknown) => {
            hostKeyError = new AgentError({ code: "UNAVAILABLE", message: `could not record the host key of '${this.host}' (${fingerprint}); refusing it: ${String(err)}` }, { cause: err });
            verify(false);
          },
        );
    };

    const connectConfig: ConnectConfig = {
      host: this.config.host,
      port: this.config.port,
      username: this.config.username,
      privateKey: this.config.privateKey,
      ...(this.config.passphrase !== undefined ? { passphrase: this.config.passphrase } : {}),
      readyTimeout: this.config.connectTimeoutMs,
      keepaliveInterval: this.config.keepaliveIntervalMs,
      keepaliveCountMax: this.config.keepaliveCountMax,
      hostVerifier,
      // Only the key; never an ssh-agent or passwords.
      agent: undefined,
      tryKeyboard: false,
      ...(this.config.hostKeyAlgorithms ? { algorithms: { serverHostKey: this.config.hostKeyAlgorithms } } : {}),
    };

    client.on("ready", () => {
      if (session.lost) return;
      if (this.options.tunnelOnly) return this.nagleOffOnHost(session);
      this.startAgent(session);
    });
    client.on("error", (err: Error & { level?: string }) => {
      if (hostKeyError) return this.fail(session, hostKeyError);
      this.lose(session, this.describeConnectError(err));
    });
    client.on("close", () => {
      if (hostKeyError) return this.fail(session, hostKeyError);
      this.lose(session, new AgentError({ code: "UNAVAILABLE", message: `connection to host '${this.host}' (${this.where}) closed` }));
    });

    try {
      client.connect(connectConfig);
      // Nagle off: a small packet (a window adjust, a short request) must not wait for the peer's delayed
      // ACK (40 ms on Linux) before the next one goes. Channels to model servers carry requests and
      // streamed tokens whose latency is the point (bench/gateway.ts's ssh leg measured +44 ms with it on).
      client.setNoDelay(true);
    } catch (err) {
      this.lose(session, new AgentError({ code: "UNAVAILABLE", message: `cannot connect to host '${this.host}' (${this.where}): ${String(err)}` }, { cause: err }));
    }
  }

  private describeConnectError(err: Error & { level?: string }): AgentError {
    const base = `host '${this.host}' (${this.where})`;
    let message: string;
    if (err.level === "client-authentication") message = `${base} refused the key: ${err.message}; is its public key in the user's authorized_keys?`;
    else if (err.level === "client-timeout") message = `${base} did not complete the ssh handshake in ${this.config.connectTimeoutMs} ms`;
    else if (/keepalive/i.test(err.message)) message = `${base} stopped answering keepalives`;
    else message = `${base}: ${err.message}`;
    return new AgentError({ code: "UNAVAILABLE", message }, { cause: err });
  }

  /**
   * A tunnel-only link's connection authenticated: one short session asks the forced command for its `channels` verb
   * (scripts/ssh-wrapper.sh: written down, nothing runs), then the link is connected (tunnelReady). Why: sshd turns
   * Nagle off on a connection (TCP_NODELAY, OpenSSH's packet_set_interactive) only when a session's command starts
   * on it; a connection that carries only direct-tcpip channels keeps Nagle on, and each small packet from the host (a
   * streamed token) waited up to 40 ms for this side's delayed ACK (bench/gateway.ts's ssh leg: first chunk 53 ms
   * against 8 ms, chunk delay p50 7 ms). sshd sets it as it starts the command, whatever the command does: an older
   * wrapper, which refuses the verb (one refused line in its audit log), turns Nagle off all the same. Not `ping`:
   * that starts an agent (its adoption of the servers included) beside the live one. Once sshd accepted the session,
   * or failing that after connectTimeoutMs, the link goes on.
   */
  private nagleOffOnHost(session: Session): void {
    let done = false;
    const goOn = (problem: string | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (problem !== null) this.log("warn", "the session that turns Nagle off on the host's side did not run; streamed replies may be slower", { host: this.host, error: problem });
      this.tunnelReady(session);
    };
    const timer = setTimeout(() => goOn(`sshd did not answer the '${TUNNEL_SESSION_COMMAND}' session within ${this.config.connectTimeoutMs} ms`), this.config.connectTimeoutMs);
    timer.unref();
    // sshd sets TCP_NODELAY as it starts the command, before it says the exec request succeeded: the link goes on at
    // that answer, and `ping` ends by itself (its output is read and dropped).
    session.client.exec(TUNNEL_SESSION_COMMAND, (err, channel) => {
      if (err) return goOn(err.message);
      channel.resume();
      channel.stderr.resume();
      channel.end();
      goOn(null);
    });
  }

  /** A tunnel-only link's connection authenticated: connected, with no agent (SshLinkOptions.tunnelOnly). */
  private tunnelReady(session: Session): void {
    if (session.lost || this.session !== session) return;
    session.wasUp = true;
    this.failedAttempts = 0;
    this.lastError = null;
    this.setState("connected");
    this.log("info", "link connected (channels to the host's ports only; no agent)", { host: this.host, where: this.where });
  }

  /**
   * The config this link connects with, for a second connection to the same host as the same user (a tunnel-only
   * link in another thread): the host keys pinned now (a key trusted on first use included), so the copy needs no
   * trust of its own. Holds the private key: for this process only.
   */
  connectionConfig(): SshLinkConfigInput {
    return { ...this.config, hostKeyFingerprints: [...this.pins], trustOnFirstUse: false };
  }

  /** Runs the forced command (the agent) in a new session channel on `session`'s connection, then says hello. */
  private startAgent(session: Session): void {
    session.client.exec(this.config.command, (err, channel) => {
      if (session.lost) {
        channel?.close();
        return;
      }
      if (err) return this.lose(session, new AgentError({ code: "UNAVAILABLE", message: `host '${this.host}' did not start the agent: ${err.message}` }, { cause: err }));
      session.channel = channel;
      this.attachChannel(session, channel);
      void this.handshake(session);
    });
  }

  /**
   * The agent's session ended while its connection did not (the agent crashed, was killed, or exited): the
   * agent is started again in a new session channel on the same connection, and the link is connecting
   * until it answers hello. The connection's other channels (model servers' ports, openTcp) are kept:
   * a request or stream through them does not break because the agent did. Calls pending on the ended
   * session fail as on a drop (they may or may not have run). Not when the connection is going (its
   * 'end' or 'close' came first), when the ended agent had never answered hello, or when an agent started
   * again on this connection ends less than AGENT_RESTART_MIN_GAP_MS after it answered hello: the link is
   * lost then (lose; its error says why it was not started again in place), and reconnects with its backoff.
   */
  private agentEnded(session: Session, reason: AgentError): void {
    if (session.lost || this.session !== session) return;
    const upMs = Date.now() - session.agentUpAt;
    // The link is lost instead (lose): the connection is going, the agent never answered hello, a one-shot link
    // (its error is the agent's end as it is); or the restart guard, whose reason the error adds.
    if (this.options.oneShot || session.ending || !session.agentUp) return this.lose(session, reason);
    if (session.agentRestarted && upMs < AGENT_RESTART_MIN_GAP_MS) {
      const why = `not started again on the same connection: it ended ${(upMs / 1000).toFixed(1)} s after it was last started again there (less than ${AGENT_RESTART_MIN_GAP_MS / 1000} s)`;
      return this.lose(session, new AgentError({ code: "UNAVAILABLE", message: `${reason.message}; ${why}` }, { cause: reason }));
    }
    session.agentUp = false;
    session.channel = null;
    session.agentRestarted = true;
    this.lastError = reason;
    this.failAll(reason);
    this.log("warn", "agent session ended; starting it again on the same connection (channels to model servers kept)", { host: this.host, error: reason.message, openTunnels: this.tunnels });
    this.setState("connecting", { error: reason, agentRestart: true });
    this.startAgent(session);
  }

  private attachChannel(session: Session, channel: ClientChannel): void {
    const splitter = new LineSplitter(
      this.config.maxLineBytes,
      (line) => this.onLine(session, line),
      () => this.log("error", "dropped an oversize line from the agent", { host: this.host, maxLineBytes: this.config.maxLineBytes }),
    );
    channel.on("data", (chunk: Buffer) => splitter.push(chunk));
    // The agent's structured logs (and the wrapper's refusals) arrive on stderr.
    const stderr = new LineSplitter(
      STDERR_LINE_MAX,
      (line) => {
        if (line.trim() !== "") this.log("info", "agent stderr", { host: this.host, line });
      },
      () => {},
    );
    channel.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    // ssh2's 'exit': (code) for exit-status; (null, signal) for exit-signal (RFC 4254 §6.10 sends "KILL"; ssh2 gives "SIGKILL").
    let ended = "";
    channel.on("exit", (code: number | null, signal?: string) => {
      ended = code !== null && code !== undefined ? ` (exit code ${code})` : signal ? ` (killed by ${signal.startsWith("SIG") ? signal : `SIG${signal}`})` : "";
    });
    channel.on("close", () => {
      // A channel of an agent already replaced (its close came late) is no news.
      if (session.channel !== channel) return;
      this.agentEnded(session, new AgentError({ code: "UNAVAILABLE", message: `the agent session on host '${this.host}' ended${ended}` }));
    });
  }

  private async handshake(session: Session): Promise<void> {
    const id = this.nextId++;
    const line = JSON.stringify({ type: "request", id, method: "hello", params: { protocolVersion: PROTOCOL_VERSION } });
    try {
      const raw = await withDeadline(
        new Promise<unknown>((resolve, reject) => {
          const call: PendingCall = { id, method: "hello", line, resolve, reject };
          this.send(call, session);
        }),
        { host: this.host, method: "hello", timeoutMs: this.config.connectTimeoutMs, onGiveUp: () => this.inFlight.delete(id) },
      );
      const hello = parseResult(this.host, "hello", raw);
      if (hello.protocolVersion !== PROTOCOL_VERSION) {
        throw new AgentError({ code: "UNAVAILABLE", message: `host '${this.host}' runs agent ${hello.agentVersion} with protocol ${hello.protocolVersion}; this control plane speaks ${PROTOCOL_VERSION}. Update one of them.` });
      }
      if (session.lost || this.session !== session) return;
      session.agentUp = true;
      session.agentUpAt = Date.now();
      session.wasUp = true;
      this.failedAttempts = 0;
      this.lastError = null;
      this.setState("connected");
      this.log("info", "link connected", { host: this.host, where: this.where, agentVersion: hello.agentVersion, hostname: hello.hostname });
      for (const call of [...this.queued.values()]) {
        this.queued.delete(call.id);
        this.send(call, session);
      }
    } catch (err) {
      const e = err instanceof AgentError ? err : new AgentError({ code: "UNAVAILABLE", message: String(err) }, { cause: err });
      this.lose(session, new AgentError({ code: "UNAVAILABLE", message: `host '${this.host}' agent handshake failed: ${e.message}` }, { cause: e }));
    }
  }

  private send(call: PendingCall, session: Session | null = this.session): void {
    const channel = session?.channel;
    if (!session || session.lost || !channel) {
      call.reject(new AgentError({ code: "UNAVAILABLE", message: `host '${this.host}' is not connected` }));
      return;
    }
    this.inFlight.set(call.id, call);
    // ssh2 buffers past its window; requests are small and bounded in size.
    channel.write(`${call.line}\n`);
  }

  private onLine(session: Session, line: string): void {
    if (line.trim() === "" || session.lost) return;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      this.log("warn", "ignored a line from the agent that is not JSON", { host: this.host, bytes: line.length });
      return;
    }
    const type = (raw as { type?: unknown } | null)?.type;
    if (type === "reply") {
      const r = replySchema.safeParse(raw);
      if (!r.success) return this.log("warn", "ignored a malformed reply", { host: this.host });
      const call = this.inFlight.get(r.data.id);
      if (!call) return this.log("debug", "reply for a call that is no longer pending (timed out or cancelled)", { host: this.host, id: r.data.id });
      this.inFlight.delete(r.data.id);
      if (r.data.ok) call.resolve(r.data.result);
      else call.reject(errorFromWire(r.data.error));
    } else if (type === "event") {
      const e = agentEventSchema.safeParse(raw);
      if (!e.success) return this.log("warn", "ignored a malformed event", { host: this.host });
      for (const listener of this.eventListeners) {
        try {
          listener(e.data);
        } catch (err) {
          this.log("error", "an event listener threw", { host: this.host, error: String(err) });
        }
      }
    } else {
      this.log("warn", "ignored an unexpected message from the agent", { host: this.host });
    }
  }

  /** The session is gone: fail what was pending on it and schedule a reconnect. */
  private lose(session: Session, reason: AgentError): void {
    if (session.lost) return;
    session.lost = true;
    void endClient(session, 2000);
    if (this.session !== session) return;
    this.session = null;
    this.lastError = reason;
    this.failAll(reason);
    if (this.current === "closed" || this.current === "failed") return;
    if (this.options.oneShot) {
      this.log("info", "one-shot link ended; not reconnecting", { host: this.host, error: reason.message });
      this.setState("failed", { error: reason });
      return;
    }
    this.failedAttempts += 1;
    const { initialDelayMs, maxDelayMs, jitter } = this.config.reconnect;
    const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.failedAttempts - 1, 30));
    const delay = Math.max(0, Math.round(base * (1 + jitter * (Math.random() * 2 - 1))));
    this.nextRetryAt = Date.now() + delay;
    this.log("warn", "link down; will reconnect", { host: this.host, error: reason.message, retryInMs: delay, attempt: this.failedAttempts });
    this.retryTimer = setTimeout(() => this.connect(), delay);
    // A link alone must not keep a process (a CLI, a test) alive.
    this.retryTimer.unref();
    this.setState("disconnected", { error: reason, retryInMs: delay, attempt: this.failedAttempts, ...(session.wasUp ? { connectionLost: true } : {}) });
  }

  /** A condition retrying cannot fix: stop for good. */
  private fail(session: Session, reason: AgentError): void {
    if (this.current === "failed") return;
    session.lost = true;
    void endClient(session, 2000);
    if (this.session === session) this.session = null;
    this.lastError = reason;
    this.failAll(reason);
    this.log("error", "link failed; not retrying", { host: this.host, error: reason.message });
    this.setState("failed", { error: reason });
  }

  private failAll(reason: AgentError): void {
    for (const call of this.inFlight.values()) {
      call.reject(
        new AgentError(
          {
            code: "UNAVAILABLE",
            message: `link to host '${this.host}' dropped while ${call.method} (request ${call.id}) was pending; it may or may not have run on the host: ${reason.message}`,
          },
          { cause: reason },
        ),
      );
    }
    this.inFlight.clear();
    for (const call of this.queued.values()) {
      call.reject(new AgentError({ code: "UNAVAILABLE", message: `could not reach host '${this.host}' to send ${call.method}: ${reason.message}` }, { cause: reason }));
    }
    this.queued.clear();
  }

  private setState(state: LinkState, extra: Omit<LinkStateChange, "host" | "state" | "previous"> = {}): void {
    const previous = this.current;
    if (previous === state && state !== "disconnected") return;
    this.current = state;
    const change: LinkStateChange = { host: this.host, state, previous, ...extra };
    for (const listener of this.stateListeners) {
      try {
        listener(change);
      } catch (err) {
        this.log("error", "a state listener threw", { host: this.host, error: String(err) });
      }
    }
  }
}

/** Ends an ssh2 client and waits for its socket to close, with a deadline. */
async function endClient(session: Session, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      session.client.destroy();
      resolve();
    }, timeoutMs);
    timer.unref();
  });
  try {
    session.client.end();
  } catch {
    // Never connected: nothing to end.
    session.client.destroy();
  }
  await Promise.race([session.closed, deadline]);
  clearTimeout(timer);
}
