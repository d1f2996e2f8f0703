/**
 * The main thread's side of the gateway's bridge (worker-protocol.ts): it
 * answers the worker's calls with the app's fleet adapter, key store and
 * figures, tells the worker of fleet events, keeps the dashboard's counts
 * (requests in flight, idle unload time) on the models' ServerEntry, and
 * opens channels to ssh hosts' model servers for it on a unix socket
 * (a channel is an ssh2 stream of this thread; the worker's connection to
 * the socket is piped to it).
 *
 * Bundled into front.mjs: like front.ts, it holds only gateway code and
 * reaches the fleet through what `parts()` gives it (type imports only).
 */
import type { SshLinkConfigInput } from "synapse-host-agent/link";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import type { StopCause } from "synapse-host-agent/server-states";
import type { GuardSettings } from "~/server/http/guard";
import { isGatewayKeyEvent } from "./api-key";
import type { FleetAdapter } from "./fleet-adapter";
import type { HostReach, HostRef, InFlightRequest } from "./fleet-port";
import type { KeyStore } from "./key-store";
import type { GatewayMetrics, ModelQueue } from "./metrics-port";
import { GatewayError } from "./openai-error";
import { pipeBoth } from "./pipe-both";
import { connectRefused, cannotReachHost } from "./connect-refused";
import type { MainMessage, WireError, WorkerMessage } from "./worker-protocol";

/** What the bridge needs of the app (made again when the app's runtime is replaced). */
export interface BridgeParts {
  adapter: FleetAdapter;
  /** Host allowlist, listen address and admin token (the app's env, as its routes read them). */
  guard: GuardSettings;
  keys: KeyStore;
  metrics: GatewayMetrics | null;
  log: { warn(msg: string, data?: Record<string, unknown>): void; info(msg: string, data?: Record<string, unknown>): void };
  /**
   * Calls `onEvent` at each fleet event (not log lines) with its `data`, or
   * with null when events may have been missed (the subscription fell
   * behind); returns the unsubscribe.
   */
  onFleetEvent(onEvent: (event: { data: unknown } | null) => void): () => void;
  /** Which hosts cannot be reached now, as the status view decides it (GatewayOptions.hostReach); absent: the worker's /v1/models takes every host as reachable. */
  hostReach?: HostReach;
  /**
   * An ssh host's link config for the worker's own connection to it (LinkPool.connectionConfig: worker-tunnels.ts);
   * absent or null: the worker's channels go through this thread's channel socket.
   */
  connectionConfig?: (hostId: string) => SshLinkConfigInput | null;
}

/** What `onFleetEventsOf` reads: the app's event bus (services/fleet/events.ts), by shape. */
interface EventSource {
  subscribe(options: { signal: AbortSignal }): AsyncIterable<{ event: { type: string; data?: unknown } }>;
}

/**
 * BridgeParts.onFleetEvent over the app's event bus: each persisted event
 * (not log lines) with its data; when the subscription ends early (fell
 * behind, the bus restarted) null, and a new subscription after
 * `resubscribeMs`. Returns the unsubscribe.
 */
export function onFleetEventsOf(events: EventSource, onEvent: (event: { data: unknown } | null) => void, resubscribeMs = 200): () => void {
  const stop = new AbortController();
  void (async () => {
    while (!stop.signal.aborted) {
      try {
        for await (const item of events.subscribe({ signal: stop.signal })) if (item.event.type === "event") onEvent({ data: item.event.data });
      } catch {
        // Fell behind or the bus restarted.
      }
      if (stop.signal.aborted) return;
      onEvent(null);
      await new Promise((r) => setTimeout(r, resubscribeMs));
    }
  })();
  return () => stop.abort();
}

export interface FleetHost {
  /** The unix socket the worker opens channels through (WorkerConfig.channelSocket). */
  channelSocket: string;
  /** Handles one message from the worker. */
  receive(m: WorkerMessage): void;
  /** Resolves once the worker's held-back notes (figures, counts) are in, or after `timeoutMs`. */
  flushNotes(timeoutMs: number): Promise<void>;
  close(): void;
}

function wireError(err: unknown): WireError {
  if (err instanceof GatewayError) return { message: err.message, gateway: { status: err.status, type: err.type, code: err.code, options: err.options } };
  return { message: err instanceof Error ? err.message : String(err) };
}

export function createFleetHost(options: {
  /** The parts over the app's current runtime (waits for the app to start; rejects past its deadline). */
  parts: () => Promise<BridgeParts>;
  post: (m: MainMessage) => void;
  /** Called with the worker's public listener outcome. */
  onListening?: (m: Extract<WorkerMessage, { t: "listening" | "listen-failed" }>) => void;
}): FleetHost {
  const { post } = options;
  /** The worker's requests in flight, by its token. */
  const requests = new Map<number, InFlightRequest>();
  const flushes = new Map<number, () => void>();
  let nextFlush = 1;
  let queues: ModelQueue[] = [];
  let current: BridgeParts | null = null;
  let unsubscribe: (() => void) | null = null;
  let unsetQueues: (() => void) | undefined;
  let unsubscribeStopping: (() => void) | undefined;
  let unsubscribeShutdown: (() => void) | undefined;
  let closed = false;

  /** The parts, subscribed to their fleet events once per runtime. */
  async function parts(): Promise<BridgeParts> {
    const p = await options.parts();
    // Closed meanwhile (its worker died): nothing to subscribe for.
    if (closed) return p;
    if (p !== current) {
      unsubscribe?.();
      unsetQueues?.();
      current = p;
      unsubscribe = p.onFleetEvent((event) => {
        // A key created or deleted (or events missed): both threads' cached keys go, this thread's first.
        if (event === null || isGatewayKeyEvent(event.data)) {
          p.keys.forget();
          post({ t: "changed", keys: true });
        } else post({ t: "changed" });
      });
      unsetQueues = p.metrics?.setQueueSource(() => queues);
      unsubscribeStopping?.();
      unsubscribeStopping = p.adapter.onStopping?.((stopping) => closed || post({ t: "stopping", stopping }));
      unsubscribeShutdown?.();
      unsubscribeShutdown = p.adapter.onShutdown?.((notice) => {
        if (closed) return;
        post({ t: "shutdown", notice });
        // The worker tells the requests it begins in batches (remote-fleet.ts NOTES_EVERY_MS): those it began before
        // this notice are counted here once its notes held back are in. The shutdown's drain waits for that before
        // it reads the count; read earlier, a reply begun a moment ago counted 0 and its server was stopped at once.
        return flushNotes(Math.max(0, notice.drainUntil - Date.now()));
      });
      // A new runtime: what the worker holds of the old one is stale.
      post({ t: "changed" });
    }
    return p;
  }
  /** FleetHost.flushNotes. */
  function flushNotes(timeoutMs: number): Promise<void> {
    const id = nextFlush++;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        flushes.delete(id);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      flushes.set(id, done);
      post({ t: "flush", id });
    });
  }

  // At once, not at the first request: the dashboard's counts and the queue figures need the subscription.
  void parts().catch(() => undefined);

  async function answer(method: string, args: unknown[]): Promise<unknown> {
    const p = await parts();
    switch (method) {
      case "models":
        return p.adapter.models(args[0] as { fresh?: boolean; only?: string });
      case "start":
        return p.adapter.start(args[0] as string);
      case "stop":
        return p.adapter.stop(args[0] as string, args[1] as StopCause);
      case "linkDown":
        return p.adapter.linkDown ? p.adapter.linkDown(args[0] as string, args[1] as { timeoutMs: number }) : null;
      case "hostReach":
        return p.hostReach ? p.hostReach(args[0] as HostRef[]) : {};
      case "connectionConfig":
        return p.connectionConfig ? p.connectionConfig(args[0] as string) : null;
      case "keyLookup":
        return p.keys.lookup(args[0] as string);
      case "guard":
        return p.guard;
      default:
        throw new Error(`unknown call ${method}`);
    }
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), "synapse-gw-"));
  const channelSocket = path.join(dir, "channels.sock");
  const channels = net.createServer((s) => {
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => s.destroy(), 10_000);
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const nl = got.indexOf(10);
      if (nl === -1) {
        if (got.length > 4096) s.destroy();
        return;
      }
      s.off("data", onData);
      s.pause();
      clearTimeout(timer);
      let ask: { hostId: string; port: number; timeoutMs: number };
      try {
        ask = JSON.parse(got.toString("utf8", 0, nl)) as typeof ask;
      } catch {
        s.destroy();
        return;
      }
      parts()
        .then((p) => {
          if (!p.adapter.connect) throw new Error(`host ${ask.hostId} is reached over ssh, and this gateway was given no way to open channels to it`);
          return p.adapter.connect(ask.hostId, ask.port, { timeoutMs: ask.timeoutMs });
        })
        .then(
          (channel) => {
            if (s.destroyed) {
              channel.destroy();
              return;
            }
            s.write("ok\n");
            const rest = got.subarray(nl + 1);
            if (rest.length > 0) channel.write(rest);
            pipeBoth(s, channel);
          },
          (err: unknown) => {
            // `refused`: nothing listens on the port (the worker's forward waits for a crash's notice then, raw-upstream.ts);
            // `unreachable`: the host cannot be reached (its link is down, or its key does not permit the port).
            const kind = connectRefused(err) ? "refused" : cannotReachHost(err) ? "unreachable" : "error";
            s.end(`${kind} ${(err instanceof Error ? err.message : String(err)).replace(/\n/g, " ")}\n`);
          },
        );
    };
    s.on("data", onData);
    s.on("error", () => s.destroy());
  });
  channels.listen(channelSocket);

  return {
    channelSocket,
    receive(m) {
      switch (m.t) {
        case "batch":
          for (const item of m.items) this.receive(item);
          return;
        case "call":
          // A reply after close is for a worker that is gone: dropped, never given to the next one.
          answer(m.method, m.args).then(
            (value) => closed || post({ t: "reply", id: m.id, ok: true, value: value ?? null }),
            (err: unknown) => closed || post({ t: "reply", id: m.id, ok: false, error: wireError(err) }),
          );
          return;
        case "begin":
          if (current) {
            const use = current.adapter.beginRequest(m.modelId);
            if (m.served) use.served();
            requests.set(m.token, use);
          }
          return;
        case "served":
          requests.get(m.token)?.served();
          return;
        case "end":
          requests.get(m.token)?.end();
          requests.delete(m.token);
          return;
        case "idle":
          current?.adapter.setIdleUnloadAt(m.modelId, m.at);
          return;
        case "record":
          current?.metrics?.record(m.r);
          return;
        case "queues":
          queues = m.queues;
          return;
        case "log":
          current?.log[m.level](m.msg, m.data);
          return;
        case "flushed":
          flushes.get(m.id)?.();
          return;
        case "listening":
        case "listen-failed":
          options.onListening?.(m);
          return;
      }
    },
    flushNotes,
    close() {
      if (closed) return;
      for (const done of flushes.values()) done();
      closed = true;
      unsubscribe?.();
      unsetQueues?.();
      unsubscribeStopping?.();
      unsubscribeShutdown?.();
      for (const r of requests.values()) r.end();
      requests.clear();
      channels.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
