/**
 * The worker thread's side of the gateway's bridge to the main thread
 * (worker-protocol.ts): a GatewayFleet, a KeyStore and a GatewayMetrics
 * whose work is done by the main thread's fleet, registry and figures.
 *
 * What a request needs at once is answered in the worker, with no message
 * and no wait for the main thread (which also runs Next, the fleet, the
 * agents' log lines and the database, and can be busy for milliseconds):
 * - `models()`: the last list the main thread sent, while no fleet event
 *   came since and it is younger than MODELS_MAX_AGE_MS; otherwise one call
 *   (the main thread's snapshot keeps its own freshness rules);
 * - requests in flight, last use (a request served: see
 *   ModelUsage.lastUsedAt) and the idle unload time: kept here (the idle
 *   unloader runs here), and told to the main thread for the dashboard;
 * - key lookups: cached for KEY_TTL_MS, dropped when the main thread says
 *   keys changed.
 * Starting and stopping a model, a fresh read, a key not cached: one call.
 * Every call has a deadline.
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import type { MessagePort } from "node:worker_threads";
import type { SshLinkConfigInput } from "synapse-host-agent/link";
import type { StopCause } from "synapse-host-agent/server-states";
import type { GuardSettings } from "~/server/http/guard";
import { createChangeWaiters } from "./change-waiters";
import type { GatewayFleet, GatewayModel, HostLinkDown, HostReach, ModelUsage, StartOutcome } from "./fleet-port";
import { createGrantCache, type KeyGrant, type KeyStore } from "./key-store";
import type { GatewayMetrics, ModelQueue } from "./metrics-port";
import { GatewayError } from "./openai-error";
import type { CallMethod, MainMessage, WorkerMessage } from "./worker-protocol";
import { createWorkerTunnels } from "./worker-tunnels";
import type { ShutdownNotice } from "~/server/services/fleet/fleet-types";
import { createOnceListeners, createStoppingListeners } from "./notice-listeners";

/** A model list from the main thread is used for this long without asking again, while no fleet event came (ms). */
export const MODELS_MAX_AGE_MS = 1000;
/**
 * Key lookups are cached this long (ms). A key's creation or deletion drops
 * the cache (a `changed` message with `keys`), so this bounds only what
 * nothing announced.
 */
export const KEY_TTL_MS = 2000;
/** Deadline of a call, except a start (which the fleet bounds by the model's readiness deadline). */
const CALL_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 60 * 60_000;
const QUEUES_EVERY_MS = 1000;
/** Notes to the main thread (the dashboard's counts, the figures, log lines) wait at most this long (ms). */
export const NOTES_EVERY_MS = 50;

export interface RemoteFleet extends GatewayFleet {
  /** The app's guard settings (asked once the app runs; its env does not change while it runs). */
  guard(): Promise<GuardSettings>;
  keys: KeyStore;
  metrics: GatewayMetrics;
  log: { warn(msg: string, data?: Record<string, unknown>): void };
  /** Which hosts cannot be reached now, as the main thread's status view decides it (GatewayOptions.hostReach). */
  hostReach: HostReach;
  close(): void;
}

interface Usage {
  inFlight: number;
  lastUsedAt: number | null;
  idleUnloadAt: number | null;
  timer: NodeJS.Timeout | null;
}

/**
 * `ownSshConnections` (default true): channels to models on ssh hosts go over the worker's own ssh connection to
 * each host (worker-tunnels.ts), the main thread's channel socket only while that connection is not up; false:
 * always the main thread's way.
 */
export function createRemoteFleet(port: Pick<MessagePort, "postMessage" | "on" | "off">, options: { channelSocket: string; now?: () => number; ownSshConnections?: boolean }): RemoteFleet {
  const now = options.now ?? Date.now;
  // Counts, figures and log lines go in one batch every NOTES_EVERY_MS: a message to the main thread costs the
  // worker about 0.1 ms (a profile of the app at c=1: 14 % of the worker's busy time when each request sent its own).
  let batch: WorkerMessage[] = [];
  let flushTimer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    const items = batch;
    batch = [];
    if (items.length > 0) port.postMessage(items.length === 1 ? items[0]! : ({ t: "batch", items } satisfies WorkerMessage));
  };
  const send = (m: WorkerMessage) => {
    if (batch.push(m) === 1) flushTimer = setTimeout(flush, NOTES_EVERY_MS);
  };
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let list: readonly GatewayModel[] | null = null;
  let listAt = 0;
  /** Bumped by every fleet event: a list read before the latest event is not kept as current. */
  let generation = 0;
  const changeWaiters = createChangeWaiters();
  const usages = new Map<string, Usage>();
  const keyCache = createGrantCache(KEY_TTL_MS, now);
  let queueSource: (() => ModelQueue[]) | null = null;
  let lastQueues = "";
  let nextToken = 1;
  /** Models whose load policy is on-demand, as last seen. */
  const onDemand = new Set<string>();
  /** A listener's throw: a warning the main thread logs. */
  const warnListenerFailed = (msg: string, err: unknown) => send({ t: "log", level: "warn", msg, data: { error: err instanceof Error ? err.message : String(err) } });
  /** The gateway's callbacks for a model's server stopping (GatewayFleet.onStopping). */
  const stoppingListeners = createStoppingListeners(warnListenerFailed);
  /**
   * The gateway's callbacks for the app's shutdown (GatewayFleet.onShutdown), the same way. Kept once given: the
   * notice may come before the gateway is made (it waits for the guard settings), which then hears it at once.
   */
  const shutdownListeners = createOnceListeners<ShutdownNotice>("telling the gateway of the app's shutdown failed", warnListenerFailed);

  const onMessage = (m: MainMessage) => {
    if (m.t === "flush") {
      flush();
      port.postMessage({ t: "flushed", id: m.id } satisfies WorkerMessage);
      return;
    }
    if (m.t === "changed") {
      generation++;
      list = null;
      if (m.keys) keyCache.forget();
      changeWaiters.wakeAll();
      return;
    }
    if (m.t === "stopping") {
      generation++;
      list = null;
      stoppingListeners.notify(m.stopping);
      return;
    }
    if (m.t === "shutdown") {
      shutdownListeners.notify(m.notice);
      return;
    }
    if (m.t !== "reply") return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.ok) p.resolve(m.value);
    else {
      const g = m.error.gateway;
      p.reject(g ? new GatewayError(g.status, g.type, g.code, m.error.message, g.options) : new Error(m.error.message));
    }
  };
  port.on("message", onMessage);

  function call<T>(method: CallMethod, args: unknown[], timeoutMs = CALL_TIMEOUT_MS): Promise<T> {
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`the app's main thread did not answer ${method} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      // At once: the request waits for it (batched notes before it go first, in order).
      if (batch.length > 0) flush();
      port.postMessage({ t: "call", id, method, args } satisfies WorkerMessage);
    });
  }

  function usage(modelId: string): Usage {
    let u = usages.get(modelId);
    if (!u) usages.set(modelId, (u = { inFlight: 0, lastUsedAt: null, idleUnloadAt: null, timer: null }));
    return u;
  }

  function clearIdle(modelId: string, u: Usage): void {
    if (u.timer) clearTimeout(u.timer);
    u.timer = null;
    if (u.idleUnloadAt !== null) {
      u.idleUnloadAt = null;
      send({ t: "idle", modelId, at: null });
    }
  }

  const queuesTimer = setInterval(() => {
    if (!queueSource) return;
    const queues = queueSource();
    const text = JSON.stringify(queues);
    if (text === lastQueues) return;
    lastQueues = text;
    send({ t: "queues", queues });
  }, QUEUES_EVERY_MS);
  queuesTimer.unref();

  const tunnels =
    options.ownSshConnections === false
      ? null
      : createWorkerTunnels({
          configFor: (hostId) => call<SshLinkConfigInput | null>("connectionConfig", [hostId]),
          fallback: (hostId, port, timeoutMs) => openChannel(options.channelSocket, hostId, port, timeoutMs),
          log: { warn: (msg, data) => send({ t: "log", level: "warn", msg, ...(data ? { data } : {}) }) },
          now,
        });

  return {
    guard: () => call<GuardSettings>("guard", [], START_TIMEOUT_MS),
    modelsNow() {
      return list !== null && now() - listAt < MODELS_MAX_AGE_MS ? list : null;
    },
    async models(opts = {}) {
      if (!opts.fresh && list !== null && now() - listAt < MODELS_MAX_AGE_MS) return list;
      const gen = generation;
      const got = await call<GatewayModel[]>("models", [opts]);
      // A look at one model (`only`) is not the list of every model.
      if (gen === generation && opts.only === undefined) {
        list = got;
        listAt = now();
      }
      for (const m of got) {
        if (m.loadPolicy === "on-demand") onDemand.add(m.id);
        else onDemand.delete(m.id);
      }
      return got;
    },
    start(modelId) {
      return call<StartOutcome>("start", [modelId], START_TIMEOUT_MS);
    },
    changed(timeoutMs) {
      return changeWaiters.wait(timeoutMs);
    },
    hostReach(hosts) {
      return call<Record<string, boolean>>("hostReach", [hosts]);
    },
    linkDown(hostId, opts) {
      // The main thread's wait for the link's attempt, and the message's way back.
      return call<HostLinkDown | null>("linkDown", [hostId, opts], opts.timeoutMs + CALL_TIMEOUT_MS);
    },
    onStopping: stoppingListeners.add,
    onShutdown: shutdownListeners.add,
    async stop(modelId, cause: StopCause) {
      await call<void>("stop", [modelId, cause]);
      list = null;
    },
    beginRequest(modelId) {
      const u = usage(modelId);
      u.inFlight++;
      const token = nextToken++;
      const begin: Extract<WorkerMessage, { t: "begin" }> = { t: "begin", token, modelId };
      // The batch the begin waits in (null: sent): its being served rides on it while it waits there.
      let waitingIn: WorkerMessage[] | null = null;
      // An idle on-demand model is what a start may evict: the main thread must see this request before it
      // decides (operations.ts refuses to evict a model with requests in flight), so its begin goes at once.
      // Other models' begins wait for the batch: one message per request cost the worker 14 % of its time.
      if (onDemand.has(modelId)) {
        if (batch.length > 0) flush();
        port.postMessage(begin);
      } else {
        send(begin);
        waitingIn = batch;
      }
      let served = false;
      let ended = false;
      return {
        served() {
          if (ended || served) return;
          served = true;
          u.lastUsedAt = now();
          clearIdle(modelId, u);
          // Usually in the same tick as its begin (a ready model, a free place): no message of its own.
          if (waitingIn === batch) begin.served = true;
          else send({ t: "served", token });
        },
        end() {
          if (ended) return;
          ended = true;
          u.inFlight--;
          if (served) u.lastUsedAt = now();
          send({ t: "end", token });
        },
      };
    },
    usage(modelId): ModelUsage {
      const u = usage(modelId);
      return { inFlight: u.inFlight, lastUsedAt: u.lastUsedAt, idleUnloadAt: u.idleUnloadAt };
    },
    setIdleUnloadAt(modelId, at, onDue) {
      const u = usage(modelId);
      if (at === u.idleUnloadAt && (at === null || u.timer !== null || !onDue)) return;
      if (u.timer) clearTimeout(u.timer);
      u.timer = null;
      if (at !== u.idleUnloadAt) send({ t: "idle", modelId, at });
      u.idleUnloadAt = at;
      if (at === null || !onDue) return;
      const timer = setTimeout(() => {
        if (u.timer === timer) u.timer = null;
        onDue();
      }, Math.max(0, at - now()));
      timer.unref();
      u.timer = timer;
    },
    connect(hostId, port, { timeoutMs }) {
      return tunnels ? tunnels.open(hostId, port, timeoutMs) : openChannel(options.channelSocket, hostId, port, timeoutMs);
    },
    keys: {
      lookup: (hash) => keyCache.lookup(hash, () => call<KeyGrant | null>("keyLookup", [hash])),
      forget: keyCache.forget,
    },
    metrics: {
      record(r) {
        send({ t: "record", r });
      },
      setQueueSource(source) {
        queueSource = source;
        return () => {
          if (queueSource === source) queueSource = null;
        };
      },
    },
    log: {
      warn(msg, data) {
        send({ t: "log", level: "warn", msg, ...(data ? { data } : {}) });
      },
    },
    close() {
      flush();
      clearInterval(queuesTimer);
      port.off("message", onMessage);
      for (const [, p] of pending) {
        clearTimeout(p.timer);
        p.reject(new Error("the gateway is closing"));
      }
      pending.clear();
      for (const u of usages.values()) if (u.timer) clearTimeout(u.timer);
      void tunnels?.close();
    },
  };
}

/** How much longer than the channel's own deadline the worker waits for the main thread's answer (ms). */
const CHANNEL_ANSWER_GRACE_MS = 1_000;

/**
 * A connection to 127.0.0.1:`port` on ssh host `hostId`, through the main
 * thread's channel socket (fleet-host.ts): one line of JSON asks for it, and
 * one line answers `ok` (then the bytes are the channel's), `refused` and the
 * error when nothing listens on the port (rejected with code ECONNREFUSED),
 * `unreachable` and the error when the host cannot be reached (its link is
 * down, or its key does not permit the port: code EHOSTUNREACH), or `error`
 * and the error.
 */
export function openChannel(socketPath: string, hostId: string, port: number, timeoutMs: number): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    const s = net.connect(socketPath);
    let got = Buffer.alloc(0);
    // The main thread keeps `timeoutMs` itself and answers why at its end (the link still connecting: `unreachable`);
    // this deadline is the backstop for a main thread that does not answer, a little later so that its answer comes first.
    const timer = setTimeout(() => s.destroy(new Error(`no channel to port ${port} on the host within ${timeoutMs} ms (the app's main thread did not answer)`)), timeoutMs + CHANNEL_ANSWER_GRACE_MS);
    const fail = (err: Error) => {
      clearTimeout(timer);
      s.off("data", onData);
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      const nl = got.indexOf(10);
      if (nl === -1) {
        if (got.length > 4096) s.destroy(new Error("the channel socket's answer is too long"));
        return;
      }
      const line = got.toString("utf8", 0, nl);
      const rest = got.subarray(nl + 1);
      s.off("data", onData);
      s.off("error", fail);
      s.off("close", onClose);
      clearTimeout(timer);
      if (line !== "ok") {
        s.destroy();
        const err = new Error(line.replace(/^(error|refused|unreachable) /, ""));
        // Nothing listens on the port, or the host cannot be reached (fleet-host.ts): as TCP says them (connect-refused.ts).
        const code = line.startsWith("refused ") ? "ECONNREFUSED" : line.startsWith("unreachable ") ? "EHOSTUNREACH" : null;
        reject(code ? Object.assign(err, { code }) : err);
        return;
      }
      s.pause();
      if (rest.length > 0) s.unshift(rest);
      resolve(s);
    };
    const onClose = () => fail(new Error("the channel socket closed before it answered"));
    s.on("data", onData);
    s.once("error", fail);
    s.once("close", onClose);
    s.write(`${JSON.stringify({ hostId, port, timeoutMs })}\n`);
  });
}
