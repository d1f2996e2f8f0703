/**
 * The worker asks the main thread for its gateway's settings when it starts.
 * If the app's runtime is not there yet (its first start failed, which
 * runtime.ts tries again on the next call, or it is slower than
 * RUNTIME_WAIT_MS), the next request asks again: gateway requests are served
 * once the runtime is there, and Next is reached through the worker meanwhile.
 * (A first version made the gateway from one ask and reset every later
 * gateway request, or crashed the worker in a loop.)
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { rm } from "node:fs/promises";
import { Worker } from "node:worker_threads";
import { afterAll, expect, it } from "vitest";
import { createFleetHost, type BridgeParts } from "./fleet-host";
import type { FleetAdapter } from "./fleet-adapter";
import type { WorkerConfig, WorkerMessage } from "./worker-protocol";
import { buildTestWorker } from "./testing/gateway-worker";

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

it("serves the gateway once the app's runtime is there, after a first failed attempt", async () => {
  const { dir, workerJs } = await buildTestWorker("synapse-gw-worker-start-");
  cleanups.push(() => rm(dir, { recursive: true, force: true }));

  // Next's server: passes gateway routes back to the worker's Node listener, as front.ts's passToWorker does.
  let nodePort = 0;
  const next = http.createServer((req, res) => {
    if (!req.url?.startsWith("/v1/")) return void res.end("next");
    const up = http.request({ host: "127.0.0.1", port: nodePort, method: req.method, path: req.url, headers: req.headers }, (u) => {
      res.writeHead(u.statusCode ?? 502, u.headers);
      u.pipe(res);
    });
    up.on("error", (e) => {
      res.writeHead(502);
      res.end(`passToWorker: ${e.message}`);
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => next.listen(0, "127.0.0.1", r));
  cleanups.push(() => new Promise<void>((r) => (next.closeAllConnections(), next.close(() => r()))));

  // The runtime is not there for the first two asks (the host's eager one, the worker's `guard`), then it is.
  let asks = 0;
  const adapter = { models: async () => [], start: async () => ({}), stop: async () => undefined, beginRequest: () => ({ served: () => undefined, end: () => undefined }), setIdleUnloadAt: () => undefined } as unknown as FleetAdapter;
  const parts = async (): Promise<BridgeParts> => {
    asks++;
    if (asks <= 2) {
      await new Promise((r) => setTimeout(r, 500));
      throw new Error("the app is still starting");
    }
    return {
      adapter,
      guard: { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined },
      keys: { lookup: async () => null, forget: () => undefined },
      metrics: null,
      log: { warn: () => undefined, info: () => undefined },
      onFleetEvent: () => () => undefined,
    };
  };
  let worker: Worker | null = null;
  let onListening!: (m: WorkerMessage) => void;
  const listening = new Promise<WorkerMessage>((r) => (onListening = r));
  const host = createFleetHost({ parts, post: (m) => worker?.postMessage(m), onListening: (m) => onListening(m) });
  worker = new Worker(workerJs, { workerData: { listen: { host: "127.0.0.1", port: 0 }, next: { host: "127.0.0.1", port: (next.address() as AddressInfo).port }, channelSocket: host.channelSocket } satisfies WorkerConfig });
  worker.on("message", (m: WorkerMessage) => host.receive(m));
  const w = worker;
  cleanups.push(async () => {
    w.postMessage({ t: "close" });
    await w.terminate();
    host.close();
  });
  const m = await listening;
  if (m.t !== "listening") throw new Error("no listen");
  nodePort = m.nodePort;
  const get = () =>
    fetch(`http://127.0.0.1:${m.port}/v1/models`).then(
      async (r) => `${r.status} ${await r.text()}`,
      (e: Error) => `failed: ${e.message} ${String((e.cause as Error | undefined)?.message ?? "")}`,
    );
  // A client's request while the app starts: answered (served once an ask succeeds, or 503 saying the app is starting), never reset.
  const early = await get();
  await new Promise((r) => setTimeout(r, 300)); // the first asks are over; the runtime is there now
  const workerAlive = await fetch(`http://127.0.0.1:${m.port}/not-gateway`).then((r) => r.text(), (e: Error) => `failed: ${e.message}`);
  expect(workerAlive).toBe("next"); // the worker runs (Next is reached through it)
  expect(early).toMatch(/^(200|503) /);

  const res = await fetch(`http://127.0.0.1:${m.port}/v1/models`).then(
    async (r) => `${r.status} ${await r.text()}`,
    (e: Error) => `failed: ${e.message} ${String((e.cause as Error | undefined)?.message ?? "")}`,
  );
  expect(res).toBe('200 {"object":"list","data":[]}');
}, 60_000);
