/**
 * LinkPool: one HostLink per Host row, created on first use and kept. A row
 * whose connection fields change gets a new link (the old one is closed
 * first, so two agents never watch the same servers).
 *
 * - linkKind "local": the agent runs in this process (createLocalLink) with
 *   the app's SYNAPSE_MODEL_ROOTS, SYNAPSE_STATE_DIR and LLAMA_SERVER_BIN.
 * - linkKind "ssh", the default external host (sshHost is the
 *   SYNAPSE_SSH_HOST_ALIAS, or empty): the seed's host-api/.ssh folder
 *   (config, key, known_hosts) through createSshLinkFromOpenSshDir.
 * - any other ssh host: address, user, port, identity file and the pinned
 *   fingerprint from the row.
 *
 * The pool fans every link's state changes and agent events out to its own
 * listeners, tagged with the host id. A local link is connected from birth:
 * the pool reports that as a transition to connected, so listeners can treat
 * "ask for status on connect" the same way for both kinds.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { AgentError, PROTOCOL_VERSION, type AgentEvent, type HelloResult } from "synapse-host-agent/protocol";
import {
  createLocalLink,
  createSshLink,
  createSshLinkFromOpenSshDir,
  hasTcpTunnel,
  leftConnecting,
  LinkConfigError,
  readOpenSshDir,
  type HostLink,
  type LinkLog,
  type LinkState,
  type LinkStateChange,
  type LocalLinkOptions,
  type SshLinkConfigInput,
  type TcpTunnelOptions,
} from "synapse-host-agent/link";
import type { Duplex } from "node:stream";
import type { Host } from "~/generated/prisma/client";
import type { Env } from "~/server/env";
import type { Logger } from "~/server/log/logger";
import { ServiceError } from "../errors";
import { errorMessage } from "synapse-host-agent/error-text";
import { DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_LOG_MAX_BYTES } from "synapse-host-agent/agent-tuning-env";

export type HostAgentConfig = NonNullable<LocalLinkOptions["agentConfig"]>;
export type LinkEnv = Pick<Env, "SYNAPSE_MODEL_ROOTS" | "SYNAPSE_STATE_DIR" | "LLAMA_SERVER_BIN" | "SYNAPSE_SSH_DIR" | "SYNAPSE_SSH_HOST_ALIAS"> &
  Partial<Pick<Env, "SYNAPSE_LOG_MAX_BYTES" | "SYNAPSE_HEALTH_INTERVAL_MS" | "SYNAPSE_START_DIR">>;
export type PoolHost = Pick<
  Host,
  "id" | "name" | "linkKind" | "sshHost" | "sshPort" | "sshUser" | "sshIdentityFile" | "hostKeyFingerprint" | "hostModelsRoot" | "llamaServerBin"
>;
/** ssh link settings a deployment (or a test) may tune. */
export type SshTuning = Partial<Pick<SshLinkConfigInput, "connectTimeoutMs" | "callTimeoutMs" | "keepaliveIntervalMs" | "keepaliveCountMax" | "reconnect">>;

/** The local host of this name keeps the agent's own state folder (shared with the `host-agent` CLI verbs). */
export const LOCAL_HOST_NAME = "local";

export interface LinkPoolOptions {
  env: LinkEnv;
  log: Logger;
  /** Overrides for local agents (tests: faster health checks, another state folder). */
  localAgent?: Partial<HostAgentConfig>;
  ssh?: SshTuning;
  /** Per-call deadline of local links (default: the link's). */
  localCallTimeoutMs?: number;
  /**
   * A link that failed for good (a refused host key, a rejected login) is
   * made anew on its next use once this long has passed (default 15 s): the
   * SSH folder, key and known_hosts are read again, so a fix needs no restart.
   */
  failedLinkRetryMs?: number;
}

export interface LinkStatus {
  state: LinkState;
  /** Why it is not connected (disconnected, failed, or the link could not be created). */
  error: string | null;
}

/** Why a host's link cannot carry a call now (LinkPool.linkDown). */
export interface LinkDown {
  /** The link's error; it names the host. */
  error: string;
  /** When the link tries again by itself (epoch ms); null when it does not (failed for good, or could not be made). */
  nextAttemptAt: number | null;
}

export interface ConnectionTest {
  host: string;
  linkKind: "local" | "ssh";
  hello: HelloResult;
  /** For ssh: the host key the server presented (null when several are pinned and it cannot be told which). */
  hostKeyFingerprint: string | null;
  /** The key was checked against a pin (false: seen for the first time, nothing pinned yet). */
  hostKeyPinned: boolean;
}

export interface LinkPool {
  /** The host's link, created on first use; recreated when the row's connection fields changed. */
  get(host: PoolHost): Promise<HostLink>;
  /** The current link, if one exists. */
  peek(hostId: string): HostLink | undefined;
  status(hostId: string): LinkStatus | null;
  hostIds(): string[];
  onState(listener: (hostId: string, change: LinkStateChange) => void): () => void;
  onEvent(listener: (hostId: string, event: AgentEvent) => void): () => void;
  /**
   * hello through a short-lived connection (ssh) or the host's link (local): versions, platform, host key. The
   * host's own ssh link, when down, is asked to try again too (HostLink.retryNow): a person testing may have fixed it.
   */
  testConnection(host: PoolHost, options?: { timeoutMs?: number }): Promise<ConnectionTest>;
  /**
   * A TCP connection to 127.0.0.1:port on an ssh host, as a channel on the
   * host's link (host-agent's ssh-tunnel.ts: bounded, with a deadline; its
   * errors name the host, and the port when sshd refuses it). UNAVAILABLE
   * for a local host (its servers are on this machine's loopback). A link
   * that is down is asked to try again first (HostLink.retryNow), and the
   * channel waits for that attempt within its deadline; `earlyRetry: false`
   * (a reader on a timer, such as the metrics reader) leaves the link to its
   * backoff, so that a host that is away is not dialled every few seconds.
   */
  openTcp(host: PoolHost, port: number, options?: TcpTunnelOptions & { earlyRetry?: boolean }): Promise<Duplex>;
  /**
   * Whether the host's link is down, for a caller about to use it (the gateway, before it starts or waits for a
   * model there): null when it is connected, connecting (calls wait for it), or not made yet; else why (the link's
   * error, naming the host) and when the link tries again by itself (epoch ms; null: it does not). A link waiting out
   * its reconnect backoff is asked to try again now (HostLink.retryNow: at most one attempt per host every
   * EARLY_RETRY_MIN_GAP_MS), and that attempt is waited for, up to `timeoutMs`.
   */
  linkDown(hostId: string, options: { timeoutMs: number }): Promise<LinkDown | null>;
  /**
   * What a second connection to an ssh host needs (its link's connectionConfig: address, user, private key, the
   * host keys pinned now), for the gateway's worker thread's channels (src/server/gateway/worker-tunnels.ts); null
   * while the host has no ssh link made (none yet, a local host, a link that could not be made) or the link is
   * not connected (its keys may not be checked yet). Holds the private key: never leaves this process.
   */
  connectionConfig(hostId: string): SshLinkConfigInput | null;
  /** Closes and forgets a host's link (host deleted). */
  remove(hostId: string): Promise<void>;
  close(): Promise<void>;
}

function expandHome(p: string): string {
  return p === "~" ? os.homedir() : p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

/**
 * A path a user typed into the registry (a host's private key file, its llama-server) as an absolute
 * path on this machine: `~/` is the home folder, and a relative path is under the folder the app was
 * started from (SYNAPSE_START_DIR, which scripts/start.mjs sets; else the working folder), so
 * `host-api/.ssh/id_ed25519` names the same file under npm start, npm run dev and in the image (/app).
 */
export function registryPath(p: string, env: Pick<LinkEnv, "SYNAPSE_START_DIR">): string {
  // Not path.resolve(process.cwd(), …): Next's build would trace every file under the working folder into the standalone output.
  const base = env.SYNAPSE_START_DIR;
  return base ? path.resolve(base, expandHome(p)) : path.resolve(expandHome(p));
}

/** The agent's own default state folder (host-agent/src/env.ts): $XDG_STATE_HOME/synapse or ~/.local/state/synapse. */
export function defaultAgentStateDir(processEnv: NodeJS.ProcessEnv = process.env): string {
  const xdg = processEnv.XDG_STATE_HOME;
  return path.join(xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), ".local", "state"), "synapse");
}

/** The agent config for a local host, from the app's environment and the row. */
export function localAgentConfig(host: PoolHost, env: LinkEnv, overrides: Partial<HostAgentConfig> = {}): HostAgentConfig {
  const roots = (env.SYNAPSE_MODEL_ROOTS ?? "").split(":").map((s) => s.trim()).filter(Boolean);
  const modelRoots = (roots.length > 0 ? roots : ["~/models"]).map((r) => path.resolve(expandHome(r)));
  // The row's model folder is where its models live: the agent must be allowed to serve from it.
  if (host.hostModelsRoot && path.isAbsolute(host.hostModelsRoot)) modelRoots.push(path.resolve(host.hostModelsRoot));
  const base = env.SYNAPSE_STATE_DIR ? path.resolve(expandHome(env.SYNAPSE_STATE_DIR)) : defaultAgentStateDir();
  // Two local agents must never share records: only the default local host gets the base folder.
  const stateDir = host.name === LOCAL_HOST_NAME ? base : path.join(base, "hosts", host.name.replace(/[^A-Za-z0-9._-]/g, "_"));
  const bin = host.llamaServerBin ?? env.LLAMA_SERVER_BIN ?? null;
  return {
    llamaServerBin: bin ? registryPath(bin, env) : null,
    stateDir,
    modelRoots: [...new Set(modelRoots)],
    logMaxBytes: env.SYNAPSE_LOG_MAX_BYTES ?? DEFAULT_LOG_MAX_BYTES,
    healthIntervalMs: env.SYNAPSE_HEALTH_INTERVAL_MS ?? DEFAULT_HEALTH_INTERVAL_MS,
    logLevel: "info",
    // This agent lives inside the app: a fork() from here costs ~4x one from a bare process
    // (see host-agent/src/supervisor/launcher.ts), so servers are spawned from a small helper.
    spawnHelper: true,
    ...overrides,
  };
}

/** The default external host: its address, user and key live in SYNAPSE_SSH_DIR's config. */
export function usesOpenSshDir(host: PoolHost, env: LinkEnv): boolean {
  return host.linkKind === "ssh" && (!host.sshHost || host.sshHost === env.SYNAPSE_SSH_HOST_ALIAS);
}

function resolveSshDir(env: LinkEnv): string {
  return path.resolve(expandHome(env.SYNAPSE_SSH_DIR));
}

/** What a link is made from; a different key means a new link. */
function connectionKey(host: PoolHost, env: LinkEnv): string {
  return JSON.stringify([
    host.name,
    host.linkKind,
    host.sshHost,
    host.sshPort,
    host.sshUser,
    host.sshIdentityFile,
    host.hostKeyFingerprint,
    host.linkKind === "local" ? host.hostModelsRoot : null,
    host.linkKind === "local" ? host.llamaServerBin : null,
    usesOpenSshDir(host, env),
  ]);
}


function sshConfigFromRow(host: PoolHost, tuning: SshTuning, env: LinkEnv): SshLinkConfigInput {
  const issues: { path: string; message: string }[] = [];
  if (!host.sshHost) issues.push({ path: "sshHost", message: `host ${host.name} has no ssh address` });
  if (!host.sshUser) issues.push({ path: "sshUser", message: `host ${host.name} has no ssh user` });
  if (!host.sshIdentityFile) issues.push({ path: "sshIdentityFile", message: `host ${host.name} has no private key file` });
  let privateKey = "";
  if (host.sshIdentityFile) {
    const file = registryPath(host.sshIdentityFile, env);
    try {
      privateKey = readFileSync(file, "utf8");
    } catch (err) {
      issues.push({ path: "sshIdentityFile", message: `cannot read the private key ${file}: ${errorMessage(err)}` });
    }
  }
  if (issues.length > 0) throw ServiceError.invalid(issues);
  return {
    ...tuning,
    name: host.name,
    host: host.sshHost!,
    port: host.sshPort,
    username: host.sshUser!,
    privateKey,
    hostKeyFingerprints: host.hostKeyFingerprint ? [host.hostKeyFingerprint] : [],
  };
}

/**
 * Why an ssh host with no pinned host key gets no link, and what to do: on the Hosts page, Test connection (which
 * shows the key the host presents) and then "Pin this key"; over the API, hosts.test then hosts.pinKey.
 */
export function unpinnedHostKeyText(host: string): string {
  return (
    `no host key is pinned for host ${host}, so the app does not connect to it: on the Hosts page press Test connection on ${host}'s card, ` +
    `check the key it shows against the host's own (on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then press Pin this key ` +
    `(API: hosts.test { id }, then hosts.pinKey { id, fingerprint }, or hosts.update { id, hostKeyFingerprint })`
  );
}

/** The default external host (SYNAPSE_SSH_DIR's config) whose known_hosts has no key for it: what to do. */
export function unknownOpenSshHostKeyText(alias: string, dir: string): string {
  return (
    `no host key for ${alias} is in ${path.join(dir, "known_hosts")}, so the app does not connect to it: add the host's key there ` +
    `(scripts/setup-ssh.sh on the host writes it; by hand, a line "${alias} <the host's /etc/ssh/ssh_host_ed25519_key.pub, its first two fields>"), ` +
    `or put "StrictHostKeyChecking accept-new" under "Host ${alias}" in ${path.join(dir, "config")} to keep the first key seen`
  );
}

/** Link config errors (LinkConfigError, ServiceError) → a BAD_REQUEST naming the host. */
function asConfigError(host: PoolHost, err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  const issues = (err as { issues?: { path: string; message: string }[] }).issues;
  return new ServiceError("BAD_REQUEST", `cannot open the link to host ${host.name}: ${errorMessage(err)}`, { ...(issues ? { issues } : {}), cause: err });
}

interface Entry {
  key: string;
  /** Resolves to the link, or rejects with why it could not be made. */
  link: Promise<HostLink>;
  current: HostLink | null;
  createError: string | null;
  /** When the link went to "failed" (null while it has not). */
  failedAt: number | null;
  unsubscribe: (() => void)[];
}

export function createLinkPool(options: LinkPoolOptions): LinkPool {
  const { env, log } = options;
  const failedLinkRetryMs = options.failedLinkRetryMs ?? 15_000;
  const entries = new Map<string, Entry>();
  const stateListeners = new Set<(hostId: string, change: LinkStateChange) => void>();
  const eventListeners = new Set<(hostId: string, event: AgentEvent) => void>();
  let closed = false;

  const linkLog = (host: string): LinkLog => {
    const l = log.child(`link.${host}`);
    return (level, msg, fields) => l[level](msg, fields);
  };
  /** The log of a connection test's own one-shot link (testConnection): `connection-test.<host>`, apart from the host's link. */
  const testLog = (host: string): LinkLog => {
    const l = log.child(`connection-test.${host}`);
    return (level, msg, fields) => l[level](msg, fields);
  };

  const emitState = (hostId: string, change: LinkStateChange) => {
    for (const l of stateListeners) {
      try {
        l(hostId, change);
      } catch (err) {
        log.error("a link state listener threw", { hostId, error: err });
      }
    }
  };

  async function open(host: PoolHost): Promise<HostLink> {
    if (host.linkKind === "local") {
      return createLocalLink({
        name: host.name,
        agentConfig: { ...localAgentConfig(host, env, options.localAgent), logger: log.child(`agent.${host.name}`) },
        log: linkLog(host.name),
        ...(options.localCallTimeoutMs ? { callTimeoutMs: options.localCallTimeoutMs } : {}),
      });
    }
    if (host.linkKind !== "ssh") throw ServiceError.invalid([{ path: "linkKind", message: `host ${host.name}: unknown link kind ${JSON.stringify(host.linkKind)}` }]);
    if (usesOpenSshDir(host, env)) {
      const alias = host.sshHost || env.SYNAPSE_SSH_HOST_ALIAS;
      return createSshLinkFromOpenSshDir(resolveSshDir(env), {
        alias,
        name: host.name,
        ...(options.ssh ? { overrides: options.ssh } : {}),
        log: linkLog(host.name),
      }).catch((err: unknown) => {
        // No key in its known_hosts: say so in the SSH folder's own terms (the link's check names trustOnFirstUse,
        // a field of its config, which this host's user never writes).
        if (!(err instanceof LinkConfigError) || !err.issues.some((i) => i.path === "hostKeyFingerprints")) throw err;
        const dir = resolveSshDir(env);
        const issues = err.issues.map((i) => (i.path === "hostKeyFingerprints" ? { path: "hostKeyFingerprint", message: unknownOpenSshHostKeyText(alias, dir) } : i));
        throw ServiceError.invalid(issues);
      });
    }
    // No pin: the link is not opened (the agent's own config check would say "set trustOnFirstUse: true", a
    // field no user of this app sets); the Hosts page's test shows the key the host presents, and pinning it is theirs.
    if (!host.hostKeyFingerprint) throw ServiceError.invalid([{ path: "hostKeyFingerprint", message: unpinnedHostKeyText(host.name) }]);
    return createSshLink(sshConfigFromRow(host, options.ssh ?? {}, env), { log: linkLog(host.name) });
  }

  function attach(hostId: string, entry: Entry, link: HostLink): void {
    entry.current = link;
    if (link.state === "failed") entry.failedAt = Date.now();
    entry.unsubscribe.push(
      link.onStateChange((change) => {
        entry.failedAt = change.state === "failed" ? Date.now() : null;
        emitState(hostId, change);
      }),
      link.onEvent((event) => {
        for (const l of eventListeners) {
          try {
            l(hostId, event);
          } catch (err) {
            log.error("an agent event listener threw", { hostId, error: err });
          }
        }
      }),
    );
    // Born connected (local): report it like any other transition to connected.
    if (link.state === "connected") queueMicrotask(() => entries.get(hostId) === entry && emitState(hostId, { host: link.host, state: "connected", previous: "connecting" }));
  }

  async function retire(hostId: string, entry: Entry): Promise<void> {
    for (const u of entry.unsubscribe.splice(0)) u();
    const link = await entry.link.catch(() => null);
    if (!link) return;
    const previous = link.state;
    await link.close().catch((err: unknown) => log.warn("closing a link failed", { hostId, error: err }));
    // Its own "closed" went nowhere (unsubscribed above): listeners still hear that it ended.
    if (previous !== "closed") emitState(hostId, { host: link.host, state: "closed", previous });
  }

  const pool: LinkPool = {
    async get(host) {
      if (closed) throw new ServiceError("UNAVAILABLE", "the fleet is shutting down");
      const key = connectionKey(host, env);
      let entry = entries.get(host.id);
      // A link that could not be made is retried on the next use (the key file may have been fixed);
      // one that failed for good, once failedLinkRetryMs has passed (known_hosts may have been fixed).
      const retryFailed = entry?.failedAt != null && Date.now() - entry.failedAt >= failedLinkRetryMs;
      if (entry && (entry.key !== key || (entry.createError !== null && entry.current === null) || retryFailed)) {
        entries.delete(host.id);
        await retire(host.id, entry);
        entry = undefined;
      }
      if (!entry) {
        const created: Entry = { key, link: Promise.resolve(null as unknown as HostLink), current: null, createError: null, failedAt: null, unsubscribe: [] };
        created.link = open(host).then(
          (link) => {
            if (closed || entries.get(host.id) !== created) {
              void link.close();
              throw new ServiceError("UNAVAILABLE", `the link to host ${host.name} was replaced or closed while it opened`);
            }
            attach(host.id, created, link);
            return link;
          },
          (err: unknown) => {
            const e = asConfigError(host, err);
            if (created.createError !== e.message) log.warn("link could not be created", { host: host.name, error: e.message });
            created.createError = e.message;
            emitState(host.id, { host: host.name, state: "failed", previous: "connecting", error: new AgentError({ code: "UNAVAILABLE", message: e.message }) });
            throw e;
          },
        );
        created.link.catch(() => undefined);
        entries.set(host.id, created);
        entry = created;
      }
      return entry.link;
    },

    peek: (hostId) => entries.get(hostId)?.current ?? undefined,

    status(hostId) {
      const entry = entries.get(hostId);
      if (!entry) return null;
      if (!entry.current) return entry.createError ? { state: "failed", error: entry.createError } : { state: "connecting", error: null };
      // A link that is down says why (the Hosts card showed only "link disconnected" while the row had the error).
      return { state: entry.current.state, error: entry.current.down?.error ?? null };
    },

    hostIds: () => [...entries.keys()],

    onState(listener) {
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },

    onEvent(listener) {
      eventListeners.add(listener);
      return () => eventListeners.delete(listener);
    },

    async testConnection(host, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 15_000;
      if (host.linkKind === "local") {
        const link = await pool.get(host);
        const hello = await link.call("hello", { protocolVersion: PROTOCOL_VERSION }, { timeoutMs }).catch((err: unknown) => {
          throw new ServiceError("FAILED", `the local agent did not answer: ${errorMessage(err)}`, { cause: err });
        });
        return { host: host.name, linkKind: "local", hello, hostKeyFingerprint: null, hostKeyPinned: false };
      }
      // A person testing the host may have just fixed it: the fleet's own link, if down, tries again now too.
      entries.get(host.id)?.current?.retryNow?.();
      // A short-lived connection of its own: testing must not disturb the fleet's link, and works for unsaved rows.
      let config: SshLinkConfigInput;
      try {
        config = usesOpenSshDir(host, env)
          ? (await readOpenSshDir(resolveSshDir(env), { alias: host.sshHost || env.SYNAPSE_SSH_HOST_ALIAS, name: host.name })).config
          : sshConfigFromRow(host, {}, env);
      } catch (err) {
        throw asConfigError(host, err);
      }
      const pins = config.hostKeyFingerprints ?? [];
      let seen: string | null = pins.length === 1 ? pins[0]! : null;
      let link: HostLink;
      try {
        link = createSshLink(
          { ...config, ...options.ssh, connectTimeoutMs: Math.min(timeoutMs, 120_000), trustOnFirstUse: pins.length === 0 },
          {
            // One exchange, logged as what it is: not under the host's link (a trial read its "link down; will
            // reconnect … retryInMs 60000" as a second link of the host), and never reconnected.
            oneShot: true,
            log: testLog(host.name),
            // Seen, not pinned: saving the pin is the user's decision (hosts.pinKey).
            onHostKeyTrusted: (key) => {
              seen = key.fingerprint;
            },
          },
        );
      } catch (err) {
        throw asConfigError(host, err);
      }
      try {
        const hello = await link.call("hello", { protocolVersion: PROTOCOL_VERSION }, { timeoutMs });
        return { host: host.name, linkKind: "ssh", hello, hostKeyFingerprint: seen, hostKeyPinned: pins.length > 0 };
      } catch (err) {
        // The host key refusal travels as the cause of the failed call; its data names the key seen.
        let data: unknown;
        for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4 && data === undefined; e = e.cause, depth++) {
          if (e instanceof AgentError && e.data !== undefined) data = e.data;
        }
        // A refused host key is the one failure the user must act on: say which key was presented.
        const presented = (data as { fingerprint?: unknown } | undefined)?.fingerprint;
        const refusal =
          typeof presented === "string"
            ? `host ${host.name} presented host key ${presented}, which does not match the pinned key; if the host was reinstalled, check the key on it (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin ${presented}`
            : null;
        throw new ServiceError("UNAVAILABLE", refusal ?? `cannot reach the agent on host ${host.name}: ${errorMessage(err)}`, {
          cause: err,
          ...(data !== undefined ? { data } : {}),
          ...(typeof presented === "string" ? { issues: [{ path: "hostKeyFingerprint", message: `the host presented ${presented}` }] } : {}),
        });
      } finally {
        await link.close();
      }
    },

    async openTcp(host, port, opts = {}) {
      const { earlyRetry = true, ...tunnel } = opts;
      const link = await pool.get(host);
      // Down, waiting out its backoff: it tries now, and the channel waits for that attempt (ssh.ts openTcp).
      if (earlyRetry) link.retryNow?.();
      if (!hasTcpTunnel(link)) throw new ServiceError("UNAVAILABLE", `host ${host.name} is reached through a ${link.kind} link, which has no channels to ports; its servers listen on this machine's loopback`);
      return link.openTcp(port, tunnel);
    },

    connectionConfig(hostId) {
      const link = entries.get(hostId)?.current;
      if (!link || link.kind !== "ssh" || link.state !== "connected" || !hasTcpTunnel(link) || !link.connectionConfig) return null;
      return link.connectionConfig();
    },

    async linkDown(hostId, opts) {
      const entry = entries.get(hostId);
      if (!entry) return null;
      const link = entry.current;
      if (!link) return entry.createError !== null ? { error: entry.createError, nextAttemptAt: null } : null;
      const before = link.down ?? null;
      if (before === null || !link.retryNow?.()) return before;
      await leftConnecting(link, opts.timeoutMs);
      // Still at it: the error before it stands (the attempt goes on; its outcome is the next caller's).
      if (link.state === "connecting") return { error: `${before.error}; an attempt to connect again, under way, has not ended within ${opts.timeoutMs} ms`, nextAttemptAt: Date.now() };
      return link.down ?? null;
    },

    async remove(hostId) {
      const entry = entries.get(hostId);
      if (!entry) return;
      entries.delete(hostId);
      await retire(hostId, entry);
    },

    async close() {
      if (closed) return;
      closed = true;
      const all = [...entries.entries()];
      entries.clear();
      await Promise.all(all.map(([hostId, entry]) => retire(hostId, entry)));
    },
  };
  return pool;
}
