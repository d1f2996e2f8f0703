/**
 * The gateway's place in the process: in front of Next, in the same HTTP
 * server. scripts/start.mjs calls `installGateway()` before it loads Next's
 * standalone server.js; the next `http.createServer(listener)` (Next's) gets
 * a listener that hands the gateway's paths (routes.ts) to the gateway and
 * everything else to Next, unchanged. Built into dist/gateway/front.mjs by
 * scripts/build-gateway.mjs (esbuild), shipped in the image beside server.js.
 *
 * Why not a Next route handler (measured with bench/gateway.ts --next-route,
 * 2026-11-30, on this 2-core machine shared with other work, load average
 * 8-12, tiny model, short non-streamed chat completion; the legs take turns
 * request by request and the added latency is paired within each turn):
 *
 *                     c=1 added p50   c=16 added p50   stream first chunk p50
 *   nginx             0.15 ms         -6.5 ms (noise)  14.6 ms
 *   this front path   1.97 ms         30 ms            10.2 ms
 *   Next route        18.2 ms         254 ms           20.9 ms
 *   (direct: 5.2 ms p50 at c=1, 46.6 ms at c=16, first chunk 14.0 ms)
 *
 * A Next route costs about nine times what the front path costs, and more
 * than llama-server's whole answer to a short completion; the front path's
 * own code adds 0.6 ms p50 under the same load (bench/gateway-micro.ts), the
 * rest is sharing the event loop with Next and the fleet. Next does not
 * support a custom server with standalone output, so the front path takes
 * Next's own server as it is created rather than replacing it.
 *
 * It reaches the fleet through the runtime that Next's instrumentation
 * creates on globalThis (src/server/runtime.ts), waiting for it at most
 * RUNTIME_WAIT_MS after start-up.
 */
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AppRuntime } from "~/server/runtime";
import { createFleetAdapter } from "./fleet-adapter";
import { createGateway, type Gateway } from "./gateway";
import { createKeyStore } from "./key-store";
import { GatewayError, sendError } from "./openai-error";
import { matchRoute } from "./routes";
import { isMetricsRequest, serveMetrics } from "./metrics-route";
import { attachFastPath } from "./fast-path";

const RUNTIME_WAIT_MS = 60_000;

type RuntimeSlot = { promise: Promise<AppRuntime>; runtime?: AppRuntime };
const globalForRuntime = globalThis as unknown as { synapseRuntime?: RuntimeSlot; synapseGateway?: { runtime: AppRuntime; gateway: Gateway } };

async function runtimeOf(): Promise<AppRuntime> {
  const deadline = Date.now() + RUNTIME_WAIT_MS;
  for (;;) {
    const slot = globalForRuntime.synapseRuntime;
    if (slot) return slot.runtime ?? slot.promise;
    if (Date.now() > deadline) throw new GatewayError(503, "service_unavailable", "starting", "the app is still starting", { retryAfterS: 2 });
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The gateway over the current runtime (made again if the runtime was replaced). */
async function gatewayOf(): Promise<Gateway> {
  const runtime = await runtimeOf();
  const held = globalForRuntime.synapseGateway;
  if (held && held.runtime === runtime) return held.gateway;
  held?.gateway.close();
  const log = runtime.log.child("gateway");
  const fleet = createFleetAdapter({ db: runtime.db, fleet: runtime.fleet, events: runtime.events, links: runtime.links, onError: (msg, err) => log.warn(msg, { error: err }) });
  const e = runtime.env;
  const gateway = createGateway({ fleet, keys: createKeyStore(runtime.db), guard: { allowedHosts: e.SYNAPSE_ALLOWED_HOSTS, listenHost: e.HOSTNAME, apiToken: e.SYNAPSE_API_TOKEN }, metrics: runtime.metrics.gateway, log });
  const close = gateway.close.bind(gateway);
  gateway.close = () => {
    close();
    fleet.close();
  };
  globalForRuntime.synapseGateway = { runtime, gateway };
  return gateway;
}

/** The gateway when it is made over the current runtime; null before (the app starting) or while it is remade. */
function readyGateway(): Gateway | null {
  const held = globalForRuntime.synapseGateway;
  return held && held.runtime === globalForRuntime.synapseRuntime?.runtime ? held.gateway : null;
}

/** Serves a gateway request (the caller checked `matchRoute`). */
export function serveGateway(req: IncomingMessage, res: ServerResponse): void {
  const ready = readyGateway();
  if (ready) {
    void ready.handle(req, res);
    return;
  }
  gatewayOf().then(
    (g) => g.handle(req, res),
    (err: unknown) => sendError(res, err instanceof GatewayError ? err : new GatewayError(503, "service_unavailable", "starting", `the app is not running: ${err instanceof Error ? err.message : String(err)}`, { retryAfterS: 2 })),
  );
}

/**
 * The gateway exists from start-up, not from the first request: idle unload
 * must run for on-demand models re-adopted after a restart. It follows the
 * runtime: closed when the runtime closes, made again for a new one.
 */
function keepCurrent(): void {
  const timer = setInterval(() => {
    const slot = globalForRuntime.synapseRuntime;
    const held = globalForRuntime.synapseGateway;
    if (held && held.runtime !== slot?.runtime) {
      held.gateway.close();
      globalForRuntime.synapseGateway = undefined;
    }
    if (slot?.runtime && !globalForRuntime.synapseGateway) void gatewayOf().catch(() => undefined);
  }, 500);
  timer.unref();
}

/** GET /api/metrics from the runtime's registry (metrics-route.ts), guarded as Next's routes are. */
function serveMetricsRequest(req: IncomingMessage, res: ServerResponse): void {
  runtimeOf().then(
    (runtime) => {
      const e = runtime.env;
      return serveMetrics(req, res, { allowedHosts: e.SYNAPSE_ALLOWED_HOSTS, listenHost: e.HOSTNAME, apiToken: e.SYNAPSE_API_TOKEN }, async () => runtime.metrics);
    },
    (err: unknown) => sendError(res, err instanceof GatewayError ? err : new GatewayError(503, "service_unavailable", "starting", "the app is still starting", { retryAfterS: 2 })),
  );
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Wraps the request listener of the next `http.createServer` call (Next's),
 * once. Returns a function that undoes the patch if no server was created.
 */
export function installGateway(): () => void {
  const original = http.createServer;
  const patched = function (this: unknown, ...args: unknown[]) {
    http.createServer = original;
    const i = args.findIndex((a) => typeof a === "function");
    if (i !== -1) {
      const next = args[i] as Listener;
      args[i] = function front(req: IncomingMessage, res: ServerResponse) {
        if (req.url !== undefined && matchRoute(req.url) !== undefined) serveGateway(req, res);
        else if (isMetricsRequest(req)) serveMetricsRequest(req, res);
        else next(req, res);
      };
    }
    const server = (original as (...a: unknown[]) => http.Server).apply(this, args);
    // The usual gateway request is read and relayed on the connection itself (fast-path.ts); the rest reaches `front`.
    if (!process.env.SYNAPSE_GATEWAY_NODE_PATH) attachFastPath(server, { gateway: readyGateway });
    return server;
  } as typeof http.createServer;
  http.createServer = patched;
  keepCurrent();
  return () => {
    if (http.createServer === patched) http.createServer = original;
  };
}
