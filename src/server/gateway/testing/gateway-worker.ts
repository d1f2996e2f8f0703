/**
 * The gateway's worker thread as the app runs it, for integration tests:
 * worker.ts compiled as scripts/build-gateway.mjs compiles it (esbuild, one
 * ES module, into a folder of the test's own), started as a real worker
 * thread, bridged by fleet-host.ts to a gateway fixture's fleet adapter and
 * registry, in front of a stand-in for Next's server on loopback (it says
 * what it was sent: "next: METHOD URL BODY").
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { Worker } from "node:worker_threads";
import { build } from "esbuild";
import OpenAI from "openai";
import { createFleetHost, onFleetEventsOf, type FleetHost } from "../fleet-host";
import { createKeyStore } from "../key-store";
import type { GatewayMetrics, GatewayRequestRecord } from "../metrics-port";
import type { WorkerConfig, WorkerMessage } from "../worker-protocol";
import type { GatewayFixture } from "./gateway-fixture";

const ROOT = path.resolve(import.meta.dirname, "../../../..");

export interface GatewayWorker {
  /** The worker's public port. */
  port: number;
  /** The worker's loopback Node listener: gateway requests that reached Next's server (front.ts passes them there). */
  nodePort: number;
  /** http://127.0.0.1:PORT, the worker's public listener. */
  url: string;
  /** The official client on its /v1, no retries. */
  client: OpenAI;
  host: FleetHost;
  /** The compiled worker, to start another one (worker.mjs). */
  workerJs: string;
  /** Figures the worker sent to the main thread, in order. */
  records: GatewayRequestRecord[];
  /** What the stand-in for Next was sent ("METHOD URL BODY"). */
  nextSaw: string[];
  dispose(): Promise<void>;
}

/**
 * The worker's bundle as scripts/build-gateway.mjs makes it (ssh2 left outside: its native crypto binding), written
 * in a new folder under node_modules/.cache (`prefix`), so that it loads ssh2 from the repository's node_modules as
 * dist/gateway/worker.mjs does. The caller removes `dir`.
 */
export async function buildTestWorker(prefix: string): Promise<{ dir: string; workerJs: string }> {
  await mkdir(path.join(ROOT, "node_modules", ".cache"), { recursive: true });
  const dir = await mkdtemp(path.join(ROOT, "node_modules", ".cache", prefix));
  const workerJs = path.join(dir, "worker.mjs");
  await build({ entryPoints: [path.join(ROOT, "src/server/gateway/worker.ts")], outfile: workerJs, bundle: true, external: ["ssh2"], platform: "node", format: "esm", target: "node20", tsconfig: path.join(ROOT, "tsconfig.json"), logLevel: "warning" });
  return { dir, workerJs };
}

/**
 * `metrics`: where the main thread puts the worker's figures besides `records` (e.g. the app's metrics' gateway sink).
 * `ownSshConnections: false`: the main thread gives the worker no ssh host's config, so its channels all go through
 * the main thread's channel socket (as before worker-tunnels.ts).
 */
export async function startGatewayWorker(g: GatewayFixture, options: { metrics?: GatewayMetrics; ownSshConnections?: boolean } = {}): Promise<GatewayWorker> {
  const { dir, workerJs } = await buildTestWorker("synapse-gw-worker-");

  const nextSaw: string[] = [];
  const nextServer = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      nextSaw.push(`${req.method} ${req.url} ${body}`);
      const text = `next: ${req.method} ${req.url} ${body}`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((r) => nextServer.listen(0, "127.0.0.1", r));
  const nextPort = (nextServer.address() as AddressInfo).port;

  const records: GatewayRequestRecord[] = [];
  let worker: Worker | null = null;
  let onListening!: (m: Extract<WorkerMessage, { t: "listening" | "listen-failed" }>) => void;
  const listening = new Promise<Extract<WorkerMessage, { t: "listening" | "listen-failed" }>>((r) => (onListening = r));
  const host = createFleetHost({
    parts: async () => ({
      adapter: g.adapter,
      guard: { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined },
      keys: createKeyStore(g.f.t.db),
      metrics: {
        record: (rec) => {
          records.push(rec);
          options.metrics?.record(rec);
        },
        setQueueSource: (source) => options.metrics?.setQueueSource(source) ?? (() => undefined),
      },
      log: { warn: () => undefined, info: () => undefined },
      onFleetEvent: (onEvent) => onFleetEventsOf(g.f.events, onEvent),
      hostReach: async (hosts) => Object.fromEntries(hosts.map((h) => [h.id, g.f.fleet.hostUnreachable(h)])),
      ...(options.ownSshConnections === false ? {} : { connectionConfig: (hostId: string) => g.f.links.connectionConfig(hostId) }),
    }),
    post: (m) => worker?.postMessage(m),
    onListening: (m) => onListening(m),
  });
  worker = new Worker(workerJs, { workerData: { listen: { host: "127.0.0.1", port: 0 }, next: { host: "127.0.0.1", port: nextPort }, channelSocket: host.channelSocket } satisfies WorkerConfig });
  worker.on("message", (m: WorkerMessage) => host.receive(m));
  const m = await listening;
  if (m.t !== "listening") throw new Error(`the worker did not listen: ${m.message}`);
  const w = worker;
  return {
    port: m.port,
    nodePort: m.nodePort,
    url: `http://127.0.0.1:${m.port}`,
    client: new OpenAI({ baseURL: `http://127.0.0.1:${m.port}/v1`, apiKey: "not-needed-on-loopback", maxRetries: 0, timeout: 60_000 }),
    host,
    workerJs,
    records,
    nextSaw,
    async dispose() {
      w.postMessage({ t: "close" });
      await w.terminate();
      host.close();
      nextServer.closeAllConnections();
      await new Promise<void>((r) => nextServer.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
