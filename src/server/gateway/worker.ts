/**
 * The gateway's worker thread: it owns the app's public listener (HOSTNAME,
 * PORT) and serves the gateway on an event loop of its own. The main thread
 * runs Next, the fleet, the agents' log lines, the database and the
 * figures; a request relayed there waited behind that work (measured with
 * bench/gateway.ts, figures in front.ts). Built into dist/gateway/worker.mjs
 * by scripts/build-gateway.mjs; front.ts starts it.
 *
 * Connections:
 * - the fast path (fast-path.ts) reads each connection's requests and
 *   answers the usual gateway request here;
 * - any other connection is handed to Next as it is: bytes piped both ways
 *   to Next's own server on loopback (WorkerConfig.next), from the first
 *   byte the fast path did not keep; the browser's connections are these
 *   (this thread listens before Next's server exists: those that come
 *   before it listens wait for the main thread's `next`, at most
 *   NEXT_WAIT_MS);
 * - gateway requests that reach Next's server (on a handed-over connection,
 *   or one the fast path leaves to Node: a chunked body, `Expect`, …) come
 *   back here through front.ts to this thread's loopback Node listener, so
 *   one gateway (one queue per model, one idle clock) serves them all.
 *
 * The fleet, keys and figures are the main thread's (remote-fleet.ts).
 */
import http from "node:http";
import net, { type AddressInfo, type Socket } from "node:net";
import { parentPort, workerData } from "node:worker_threads";
import { attachFastPath } from "./fast-path";
import { createGateway, type Gateway } from "./gateway";
import { pipeBoth } from "./pipe-both";
import { GatewayError, sendError } from "./openai-error";
import { createRemoteFleet } from "./remote-fleet";
import type { MainMessage, WorkerConfig, WorkerMessage } from "./worker-protocol";

const port = parentPort;
if (!port) throw new Error("gateway worker: run it as a worker thread (front.ts starts it)");
const config = workerData as WorkerConfig;
const post = (m: WorkerMessage) => port.postMessage(m);
const remote = createRemoteFleet(port as unknown as Parameters<typeof createRemoteFleet>[0], { channelSocket: config.channelSocket });
/**
 * The gateway, made once the app runs (its guard settings are the app's env).
 * A failed ask (the app still starting, or its first start failed) is asked
 * again by the next request, not remembered.
 */
let gateway: Gateway | null = null;
let making: Promise<Gateway> | null = null;
function ensureGateway(): Promise<Gateway> {
  if (gateway) return Promise.resolve(gateway);
  making ??= remote.guard().then(
    (guard) => (gateway = createGateway({ fleet: remote, keys: remote.keys, guard, metrics: remote.metrics, log: remote.log, hostReach: remote.hostReach })),
    (err: unknown) => {
      making = null;
      throw err;
    },
  );
  return making;
}
// At once, not at the first request: idle unload must run for on-demand models re-adopted after a restart.
ensureGateway().catch((err: unknown) => remote.log.warn("the gateway is not made yet; the next request asks again", { error: err instanceof Error ? err.message : String(err) }));

/** Where Next's server listens: given at start (a worker started again), or by the main thread's `next` once Next listens. */
let next = config.next;
/** How long a connection that came before Next listened waits for it (ms) before it is closed. */
const NEXT_WAIT_MS = 30_000;
/** At most this many connections wait for Next; more are closed at once (a client retries; a browser opens a few). */
const MAX_WAITING_FOR_NEXT = 256;
/** Connections held until Next listens (the app's first second or two): each one's deadline and close listener. */
const waitingForNext = new Map<Socket, { timer: NodeJS.Timeout; onClose: () => void }>();

/** Pipes a connection to Next's server on loopback, both ways, until either side closes; held, unread, until Next listens. */
function toNext(socket: Socket): void {
  if (next) {
    pipeBoth(socket, net.connect({ host: next.host, port: next.port, noDelay: true }));
    return;
  }
  if (waitingForNext.size >= MAX_WAITING_FOR_NEXT) {
    socket.destroy();
    return;
  }
  // Paused in the same turn as the fast path's resume: the bytes it put back stay in the socket for the pipe.
  socket.pause();
  const onClose = () => {
    clearTimeout(waitingForNext.get(socket)?.timer);
    waitingForNext.delete(socket);
    socket.destroy();
  };
  waitingForNext.set(socket, { timer: setTimeout(onClose, NEXT_WAIT_MS), onClose });
  socket.once("close", onClose);
  socket.once("error", onClose);
}

function nextListens(at: { host: string; port: number }): void {
  next = at;
  for (const [socket, { timer, onClose }] of waitingForNext) {
    clearTimeout(timer);
    socket.off("close", onClose);
    socket.off("error", onClose);
    toNext(socket);
  }
  waitingForNext.clear();
}

// Gateway requests that reached Next (front.ts passes them here).
const nodePath = http.createServer((req, res) => {
  if (gateway) void gateway.handle(req, res);
  else
    ensureGateway().then(
      (g) => g.handle(req, res),
      (err: unknown) => sendError(res, new GatewayError(503, "service_unavailable", "starting", `the app is not running yet: ${err instanceof Error ? err.message : String(err)}`, { retryAfterS: 2 })),
    );
});
const publicServer = http.createServer();
attachFastPath(publicServer, { gateway: () => gateway, whenReady: () => ensureGateway().then(() => undefined), handOver: toNext });

nodePath.listen(0, "127.0.0.1", () => {
  const nodePort = (nodePath.address() as AddressInfo).port;
  publicServer.once("error", (err: NodeJS.ErrnoException) => post({ t: "listen-failed", code: err.code ?? null, message: err.message }));
  publicServer.listen(config.listen.port, config.listen.host, () => {
    const a = publicServer.address() as AddressInfo;
    post({ t: "listening", address: a.address, port: a.port, nodePort });
  });
});

port.on("message", (m: MainMessage | { t: "close" }) => {
  if (m.t === "next") return nextListens({ host: m.host, port: m.port });
  if (m.t !== "close") return;
  for (const { onClose } of [...waitingForNext.values()]) onClose();
  publicServer.close();
  publicServer.closeAllConnections();
  nodePath.close();
  nodePath.closeAllConnections();
  gateway?.close();
  remote.close();
  port.close();
});
