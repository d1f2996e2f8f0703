/**
 * The gateway's place in the process. scripts/start.mjs awaits
 * `installGateway({ host, port })` before it loads Next's standalone
 * server.js: the gateway's worker thread (worker.ts) takes HOSTNAME:PORT
 * first (a port that is taken ends the start there, before Next or the app
 * runs anything), serves the gateway there on an event loop of its own and
 * hands every other connection to Next's server, bytes piped as they are
 * (connections that come before Next listens wait for it). The next
 * `http.createServer` (Next's) is changed in two ways:
 * - it listens on loopback, on a port the OS chooses, not on HOSTNAME:PORT
 *   (the worker is told that port);
 * - its request listener passes gateway requests that reached it (on a
 *   connection the worker handed over: the browser's, or a request the
 *   worker's fast path leaves to Node) on to the worker's loopback Node
 *   listener, and serves GET /api/metrics from the app's registry itself.
 * Built into dist/gateway/front.mjs, worker.mjs beside it, by
 * scripts/build-gateway.mjs (esbuild); shipped in the image beside server.js.
 *
 * Why a worker thread, and a relay of its own (measured with
 * bench/gateway.ts on this 2-core machine, tiny model, short non-streamed
 * chat completion at c=1, added p50 over direct, paired request by request):
 *
 *   nginx                                           0.1-0.2 ms
 *   Next route handler (fetch)                      18.2 ms  (load 8-12)
 *   front path in Next's server, Node http client   1.1-1.3 ms
 *   fast path (fast-path.ts, raw-upstream.ts) in
 *     Next's server, same event loop                0.9-1.15 ms
 *   fast path in this worker thread                 0.44-0.65 ms (nginx 0.10-0.11 in the same runs)
 *
 * In the main thread the relay waits behind the app's own work: the log
 * lines llama-server writes as it answers reach the agent and the fleet at
 * the moment its answer does, and a CPU profile of the app under this load
 * put the gateway's own code at under half of the thread's busy time. A
 * relay in its own process (the measure of what a thread of its own can
 * give) added 0.36 ms against nginx's 0.12 ms with hand-written HTTP, and
 * 0.70 ms with Node's http server and client (/tmp prototypes, same
 * machine, 1500 paired rounds).
 *
 * The bridge to the fleet, the registry and the figures is fleet-host.ts
 * (this thread) and remote-fleet.ts (the worker), over the worker's message
 * port. It follows the app's runtime (src/server/runtime.ts, on globalThis,
 * made by Next's instrumentation): waited for at most RUNTIME_WAIT_MS, and
 * made again when the runtime is replaced.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Worker } from "node:worker_threads";
import type { AppRuntime } from "~/server/runtime";
import { createFleetAdapter, type FleetAdapter } from "./fleet-adapter";
import { createFleetHost, onFleetEventsOf, type BridgeParts, type FleetHost } from "./fleet-host";
import { createKeyStore } from "./key-store";
import { GatewayError, sendError } from "./openai-error";
import { matchRoute } from "./routes";
import { isMetricsRequest, serveMetrics } from "./metrics-route";
import { listenFailureText, ListenError, type ListenAddress, type ListenFailureOptions } from "./listen-failure";
import type { MainMessage, WorkerConfig, WorkerMessage } from "./worker-protocol";

export { ListenError, listenProblem, type ListenAddress, type ListenFailureOptions } from "./listen-failure";
export { localModelPorts } from "./registered-ports";

const RUNTIME_WAIT_MS = 60_000;
/** How long a request that reached Next waits for the worker's listener (app start-up). */
const WORKER_WAIT_MS = 30_000;
/** A worker that exits on its own is started again after this long (ms). */
const RESTART_DELAY_MS = 1000;

type RuntimeSlot = { promise: Promise<AppRuntime>; runtime?: AppRuntime };
const globalForRuntime = globalThis as unknown as { synapseRuntime?: RuntimeSlot; synapseBridge?: { runtime: AppRuntime; parts: BridgeParts } };

async function runtimeOf(): Promise<AppRuntime> {
  const deadline = Date.now() + RUNTIME_WAIT_MS;
  for (;;) {
    const slot = globalForRuntime.synapseRuntime;
    if (slot) return slot.runtime ?? slot.promise;
    if (Date.now() > deadline) throw new GatewayError(503, "service_unavailable", "starting", "the app is still starting", { retryAfterS: 2 });
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The bridge's parts over the current runtime (made again, and the old adapter closed, if the runtime was replaced). */
async function bridgeParts(): Promise<BridgeParts> {
  const runtime = await runtimeOf();
  const held = globalForRuntime.synapseBridge;
  if (held && held.runtime === runtime) return held.parts;
  (held?.parts.adapter as FleetAdapter | undefined)?.close();
  const log = runtime.log.child("gateway");
  const adapter = createFleetAdapter({ db: runtime.db, fleet: runtime.fleet, events: runtime.events, links: runtime.links, onError: (msg, err) => log.warn(msg, { error: err }) });
  const e = runtime.env;
  const parts: BridgeParts = {
    adapter,
    guard: { allowedHosts: e.SYNAPSE_ALLOWED_HOSTS, listenHost: e.HOSTNAME, apiToken: e.SYNAPSE_API_TOKEN },
    keys: createKeyStore(runtime.db),
    metrics: runtime.metrics.gateway,
    log,
    onFleetEvent: (onEvent) => onFleetEventsOf(runtime.events, onEvent),
    hostReach: async (hosts) => Object.fromEntries(hosts.map((h) => [h.id, runtime.fleet.hostUnreachable(h)])),
    connectionConfig: (hostId) => runtime.links.connectionConfig(hostId),
  };
  globalForRuntime.synapseBridge = { runtime, parts };
  return parts;
}

/** The worker's bridge while it runs (its notes are asked for before /api/metrics answers). */
let activeHost: FleetHost | null = null;
/** How long /api/metrics waits for the worker's held-back figures (ms). */
const NOTES_WAIT_MS = 250;

/** GET /api/metrics from the runtime's registry (metrics-route.ts), guarded as Next's routes are; with every request the worker ended before it. */
function serveMetricsRequest(req: IncomingMessage, res: ServerResponse): void {
  Promise.all([runtimeOf(), activeHost?.flushNotes(NOTES_WAIT_MS)]).then(
    ([runtime]) => {
      const e = runtime.env;
      return serveMetrics(req, res, { allowedHosts: e.SYNAPSE_ALLOWED_HOSTS, listenHost: e.HOSTNAME, apiToken: e.SYNAPSE_API_TOKEN }, async () => runtime.metrics);
    },
    (err: unknown) => sendError(res, err instanceof GatewayError ? err : new GatewayError(503, "service_unavailable", "starting", "the app is still starting", { retryAfterS: 2 })),
  );
}

/** The worker's loopback Node listener, once it listens. */
let workerNodePort: number | null = null;
const nodePortWaiters: (() => void)[] = [];
const toWorkerAgent = new http.Agent({ keepAlive: true, maxSockets: 256, timeout: 4000 });
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"]);

/** Passes a gateway request that reached Next's server to the worker's gateway, as it came (its Host, Origin and credentials are checked there). */
function passToWorker(req: IncomingMessage, res: ServerResponse): void {
  const go = (port: number) => {
    const up = http.request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers, agent: toWorkerAgent }, (ures) => {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(ures.headers)) if (v !== undefined && !HOP.has(k)) headers[k] = v;
      res.writeHead(ures.statusCode ?? 502, headers);
      if (String(ures.headers["content-type"] ?? "").startsWith("text/event-stream")) res.flushHeaders();
      ures.pipe(res);
      ures.once("error", () => res.destroy());
    });
    up.once("error", (err) => sendError(res, new GatewayError(502, "server_error", "gateway_unreachable", `the gateway's worker did not answer: ${err.message}`, { retryAfterS: 2 })));
    res.once("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  };
  if (workerNodePort !== null) return go(workerNodePort);
  const timer = setTimeout(() => sendError(res, new GatewayError(503, "service_unavailable", "starting", "the gateway is still starting", { retryAfterS: 2 })), WORKER_WAIT_MS);
  nodePortWaiters.push(() => {
    clearTimeout(timer);
    if (!res.headersSent) go(workerNodePort!);
  });
}

/** Where Next's own server listens (loopback, a port the OS chose); null until it does. */
let nextAddress: { host: string; port: number } | null = null;
/** Tells the running worker where Next listens (set by the patched listen below). */
let tellWorkerOfNext: (() => void) | null = null;

/**
 * Starts the worker on the public address, owned here, and resolves once it
 * listens there. When it cannot (the port is taken, not allowed, not an
 * address of this machine), the worker is stopped and the promise rejects
 * with a ListenError that says what to do: nothing of the app is left
 * running. A worker that exits on its own later is started again; if that
 * one cannot listen, the app stops as on SIGTERM (its servers are stopped).
 */
function startWorker(listen: ListenAddress, failure: ListenFailureOptions): Promise<void> {
  let first = true;
  let stopping = false;
  process.once("exit", () => {
    stopping = true;
  });
  return new Promise<void>((resolve, reject) => {
    const begin = () => {
      let mine: Worker | null = null;
      const fleetHost = createFleetHost({
        parts: bridgeParts,
        // To this host's own worker only (a late reply of a dead worker's host must not reach the next one).
        post: (m) => mine?.postMessage(m),
        onListening: (m) => {
          if (m.t === "listen-failed") {
            if (first) {
              first = false;
              stopping = true;
              fleetHost.close();
              void mine?.terminate();
              void listenFailureText(listen, m.code, m.message, failure).then((text) => reject(new ListenError(listen, m.code, text)));
              return;
            }
            void listenFailureText(listen, m.code, m.message, failure).then((text) => {
              process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level: "error", component: "gateway", msg: `the gateway worker, started again, cannot listen: ${text}; stopping the app`, code: m.code })}\n`);
              // As on SIGTERM: the app stops its servers, then exits (src/server/boot.ts).
              process.kill(process.pid, "SIGTERM");
            });
            return;
          }
          workerNodePort = m.nodePort;
          for (const w of nodePortWaiters.splice(0)) w();
          if (first) {
            first = false;
            resolve();
          }
        },
      });
      const w = new Worker(new URL("./worker.mjs", import.meta.url), { workerData: { listen, next: nextAddress, channelSocket: fleetHost.channelSocket } satisfies WorkerConfig });
      mine = w;
      activeHost = fleetHost;
      tellWorkerOfNext = () => {
        if (nextAddress) w.postMessage({ t: "next", ...nextAddress } satisfies MainMessage);
      };
      w.on("message", (m: WorkerMessage) => fleetHost.receive(m));
      w.once("error", (err) => process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level: "error", component: "gateway", msg: "the gateway worker failed", error: err.message })}\n`));
      w.once("exit", (code) => {
        if (activeHost === fleetHost) activeHost = null;
        fleetHost.close();
        workerNodePort = null;
        if (first) {
          // Gone before it listened (a fault of the worker itself, not of the address): not started again.
          first = false;
          stopping = true;
          reject(new Error(`the gateway worker exited (code ${code}) before it listened on ${listen.host}:${listen.port}; see the error above`));
          return;
        }
        if (stopping) return;
        process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level: "warn", component: "gateway", msg: `the gateway worker exited (code ${code}); starting it again` })}\n`);
        setTimeout(begin, RESTART_DELAY_MS).unref();
      });
    };
    begin();
  });
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Takes the app's public address for the gateway's worker thread, then
 * changes the next `http.createServer` call (Next's), once: its listener and
 * where it listens (above). Resolves once the worker listens on `listen`
 * (HOSTNAME:PORT), before Next's server exists, so that Next's start-up
 * lines ("Ready") come only once the address is the app's. Rejects with a
 * ListenError (its message says what to do, e.g. "port 3000 is in use by pid
 * 4242 (node); stop that process or set PORT to a free port (3001 is free)")
 * when the worker cannot listen there, having stopped the worker: the caller
 * exits, and nothing of the app was started.
 */
export async function installGateway(listen: ListenAddress, failure: ListenFailureOptions = {}): Promise<void> {
  await startWorker(listen, failure);
  const original = http.createServer;
  const patched = function (this: unknown, ...args: unknown[]) {
    http.createServer = original;
    const i = args.findIndex((a) => typeof a === "function");
    if (i !== -1) {
      const next = args[i] as Listener;
      args[i] = function front(req: IncomingMessage, res: ServerResponse) {
        if (req.url !== undefined && matchRoute(req.url) !== undefined) passToWorker(req, res);
        else if (isMetricsRequest(req)) serveMetricsRequest(req, res);
        else next(req, res);
      };
    }
    const server = (original as (...a: unknown[]) => http.Server).apply(this, args);
    const listenOn = server.listen.bind(server) as (...a: unknown[]) => http.Server;
    // Next calls listen(port, hostname): its server takes a loopback port of its own, the worker holds the public address.
    server.listen = function (this: http.Server, ...a: unknown[]) {
      const port = Number(a[0]);
      const host = typeof a[1] === "string" ? a[1] : "0.0.0.0";
      const done = a.find((x) => typeof x === "function") as (() => void) | undefined;
      // To Next (and all that reads it: its start-up line, process.env.PORT, which the app reads as its own port)
      // the server's address is the public one the worker listens on.
      const loopbackAddress = server.address.bind(server);
      server.address = () => {
        const own = loopbackAddress();
        return own && typeof own === "object" && port !== 0 ? { ...own, address: host, port } : own;
      };
      server.once("listening", () => {
        const own = loopbackAddress() as AddressInfo;
        nextAddress = { host: "127.0.0.1", port: own.port };
        tellWorkerOfNext?.();
      });
      return listenOn(0, "127.0.0.1", done);
    } as typeof server.listen;
    return server;
  } as typeof http.createServer;
  http.createServer = patched;
}
