/**
 * The gateway worker's own ssh connection to each ssh host, for channels to
 * its model servers: a request's bytes then go from the client's socket to
 * the ssh channel on this thread's event loop, never through the app's main
 * thread.
 *
 * Why: through the main thread (fleet-host.ts's channel socket, the host's
 * link there), every chunk of a streamed answer from a model on an ssh host
 * waited for that thread's event loop, which also runs Next, the fleet and
 * the registry. bench/gateway.ts (2 cores, 8 reps, 2026-12-02): the ssh
 * leg's chunk delay p99 was 13.7 ms against 3.7 ms for a local model through
 * the same gateway, and `perf_hooks.monitorEventLoopDelay` put the main
 * thread's p99 at 6-12 ms (max 25-110 ms per 2 s) against the worker's 4-6 ms.
 *
 * The connection is made with the host link's own config (LinkPool
 * connectionConfig, asked of the main thread: address, user, key, and the
 * host keys pinned there, so no key is trusted here that the app did not
 * pin) as a tunnel-only link (host-agent ssh.ts `tunnelOnly`: the key's
 * forced command runs once, for its `channels` verb (nothing runs), so that sshd turns Nagle off
 * on the connection, and no agent runs on it; the key's permitopen still
 * decides which ports a channel may reach). One per
 * host, made on the first request for one of its models, kept with its own
 * keepalives and reconnect backoff, its config asked again at most every
 * CONFIG_RECHECK_MS while in use (a host edited: the link is made anew), and
 * closed after IDLE_CLOSE_MS with no request and no channel open (a host
 * removed is never asked about again).
 *
 * Only a connected link is used. Anything else (not made yet, reconnecting,
 * a channel refused or failed) goes the main thread's way within what is
 * left of the deadline (`fallback`: remote-fleet.ts openChannel), whose
 * answers carry the fleet's view of the host (unreachable with the link's
 * error, a port the key does not permit, nothing listening), so every error
 * a client gets is the one it got before. Such a channel is not kept alive
 * for another request once this thread's own connection is up (raw-upstream.ts
 * KeptAliveWhile), so a steady stream of requests moves over to it.
 */
import type { Duplex } from "node:stream";
import type { HostLink, LinkLog, SshLinkConfigInput, TcpTunnel } from "synapse-host-agent/link";
import { createSshLink } from "synapse-host-agent/ssh-link";
import type { KeptAliveWhile } from "./raw-upstream";

/** How often, at most, a host's config is asked again while its link is in use (ms). */
export const CONFIG_RECHECK_MS = 10_000;
/**
 * The most of a channel's deadline its own link may take (ms); the main thread's way gets the rest, at least half.
 * A channel that opens takes a round trip; one that does not (a connection gone silent that keepalives have not
 * found yet) must leave the fallback a real chance.
 */
export const OWN_CHANNEL_MAX_MS = 2_000;
/** After a channel on its own link timed out, the host's requests go the main thread's way for this long (ms). */
export const OWN_LINK_SKIP_MS = 10_000;
/** A host's link with no request for this long and no channel open is closed (a host removed, or idle); the next request makes it again (ms). */
export const IDLE_CLOSE_MS = 10 * 60_000;

export interface WorkerTunnelsOptions {
  /** The host link's config (LinkPool.connectionConfig, over the bridge); null: none now (no ssh link connected there). */
  configFor(hostId: string): Promise<SshLinkConfigInput | null>;
  /** A channel the main thread's way (remote-fleet.ts openChannel), with what is left of the deadline (ms). */
  fallback(hostId: string, port: number, timeoutMs: number): Promise<Duplex>;
  log: { warn(msg: string, data?: Record<string, unknown>): void };
  now?: () => number;
  /** Makes a host's link from its config; default: host-agent's ssh link, tunnelOnly (tests give a stand-in). */
  makeLink?: (config: SshLinkConfigInput, log: LinkLog) => HostLink & TcpTunnel;
}

export interface WorkerTunnels {
  /** A connection to 127.0.0.1:`port` on ssh host `hostId` within `timeoutMs`; rejects as `fallback` does. */
  open(hostId: string, port: number, timeoutMs: number): Promise<Duplex>;
  /** Closes every link (the worker is closing). */
  close(): Promise<void>;
}

interface Entry {
  link: HostLink & TcpTunnel;
  /** The config it was made with, as JSON (a changed one makes it anew). */
  key: string;
  checkedAt: number;
  /** The last open() for the host (epoch ms). */
  usedAt: number;
  /** Until then (epoch ms) its channels go the main thread's way: one timed out on it. */
  skipUntil: number;
}

export function createWorkerTunnels(options: WorkerTunnelsOptions): WorkerTunnels {
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  /** Hosts whose config is being asked for (one ask at a time per host). */
  const asking = new Map<string, Promise<void>>();
  let closed = false;

  /** Link log: warnings and errors to the app's log (through the bridge); the rest is the host link's to say. */
  const linkLog: LinkLog = (level, msg, fields) => {
    if (level === "warn" || level === "error") options.log.warn(`gateway's own ssh connection: ${msg}`, fields);
  };

  function drop(hostId: string): void {
    const e = entries.get(hostId);
    if (!e) return;
    entries.delete(hostId);
    void e.link.close().catch(() => undefined);
  }

  /** Asks the host's config (once at a time) and makes, keeps, remakes or drops its link to match. Never rejects. */
  function recheck(hostId: string): Promise<void> {
    const busy = asking.get(hostId);
    if (busy) return busy;
    const p = options
      .configFor(hostId)
      .then((config) => {
        if (closed) return;
        const e = entries.get(hostId);
        if (config === null) {
          // No ssh link connected there now: keep a link already made (its own reconnects), drop none on a blip.
          if (e) e.checkedAt = now();
          return;
        }
        const key = JSON.stringify(config);
        if (e && e.key === key) {
          e.checkedAt = now();
          return;
        }
        drop(hostId);
        const link = options.makeLink ? options.makeLink(config, linkLog) : (createSshLink(config, { tunnelOnly: true, log: linkLog }) as Entry["link"]);
        entries.set(hostId, { link, key, checkedAt: now(), usedAt: now(), skipUntil: 0 });
      })
      .catch((err: unknown) => {
        if (closed) return;
        options.log.warn("the gateway could not make its own ssh connection to a host; its requests go through the app's main thread", { hostId, error: err instanceof Error ? err.message : String(err) });
      })
      .finally(() => asking.delete(hostId));
    asking.set(hostId, p);
    return p;
  }

  // Links nobody uses are closed: a host removed from the registry is never asked about again, and its link would
  // otherwise keep its connection (and reconnect to it) for the worker's life.
  const sweep = setInterval(() => {
    for (const [hostId, e] of entries) if (now() - e.usedAt >= IDLE_CLOSE_MS && e.link.openTunnels === 0) drop(hostId);
  }, 60_000);
  sweep.unref();

  return {
    async open(hostId, port, timeoutMs) {
      const t0 = now();
      const e = entries.get(hostId);
      if (e) e.usedAt = t0;
      if (!closed && (!e || now() - e.checkedAt >= CONFIG_RECHECK_MS)) void recheck(hostId);
      if (e && e.link.state === "connected" && t0 >= e.skipUntil) {
        const ownMs = Math.min(OWN_CHANNEL_MAX_MS, Math.floor(timeoutMs / 2));
        try {
          return await e.link.openTcp(port, { timeoutMs: ownMs });
        } catch (err) {
          // The main thread's way says why, in the fleet's words (or finds a way this link did not). A channel that
          // did not open in time: its connection may be gone silent; the next requests do not wait on it.
          if ((err as { code?: unknown }).code === "TIMEOUT") e.skipUntil = now() + OWN_LINK_SKIP_MS;
        }
      }
      const channel = await options.fallback(hostId, port, Math.max(1, timeoutMs - (now() - t0)));
      // Kept alive for the next request only while this thread has no connection of its own up to the host.
      const keepAlive = () => {
        const own = entries.get(hostId);
        return !own || own.link.state !== "connected" || now() < own.skipUntil;
      };
      return Object.assign(channel, { keepAlive } satisfies KeptAliveWhile);
    },
    async close() {
      closed = true;
      clearInterval(sweep);
      const links = [...entries.values()].map((e) => e.link);
      entries.clear();
      await Promise.all(links.map((l) => l.close().catch(() => undefined)));
    },
  };
}
