/**
 * Micro-benchmark of the gateway's own code path (no Next, no database):
 * createGateway over a fixed one-model GatewayFleet in this process, in
 * front of a real llama-server with the tiny model, against the same server
 * directly. Requests alternate one by one (direct, gateway, direct, …) and
 * the figure is the median of the paired differences, which holds up on a
 * busy machine better than separate batches.
 *
 * The "gateway" leg is the gateway as the app serves it: the fast path
 * (fast-path.ts) reads the connection and raw-upstream.ts relays; "node
 * path" is the same gateway behind Node's http server (what serves a
 * request that reached Next, or one the fast path leaves to Node).
 *
 * A further leg, "node floor", is the least a proxy in Node can do: an
 * http.Server whose handler sends the request on with http.request over a
 * keep-alive agent and pipes the answer back (no checks, no routing). The
 * gateway's added time minus the floor's is what the gateway's own code
 * costs; the floor is what any proxy written on Node's http pays.
 *
 *   npx tsx bench/gateway-micro.ts [--pairs 2000] [--baseline DIR]
 *
 * `--baseline DIR`: one more leg, the gateway of another checkout (its
 * src/server/gateway/gateway.ts, loaded into this process), so a change to
 * the gateway's code is measured against the code before it in one run
 * ("gateway minus baseline", paired).
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { writeTinyModel } from "../host-agent/src/gguf/tiny-model.ts";
import { freePort } from "../host-agent/test/harness/ports.ts";
import { createGateway } from "../src/server/gateway/gateway.ts";
import { attachFastPath } from "../src/server/gateway/fast-path.ts";
import { argValue, llamaServerBin, ms, percentile } from "./lib.ts";
import { oneModelFleet } from "./one-model-fleet.ts";

const PAIRS = Number(argValue("--pairs") ?? 2000);

async function main() {
  const bin = llamaServerBin();
  const dir = await mkdtemp(path.join(os.tmpdir(), "synapse-bench-gwm-"));
  const file = path.join(dir, "tiny.gguf");
  await writeTinyModel(file);
  const port = await freePort();
  const child = spawn(bin, ["-m", file, "--host", "127.0.0.1", "--port", String(port), "-c", "256", "-t", "1", "-np", "1", "--alias", "tiny"], { stdio: "ignore" });
  try {
    for (let i = 0; ; i++) {
      if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) break;
      if (i > 600) throw new Error("llama-server did not start");
      await sleep(50);
    }
    const fleet = oneModelFleet("tiny", { host: "127.0.0.1", port }, { parallel: 1, concurrency: 1, queueLimit: 8 });
    const gateway = createGateway({ fleet, guard: { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined } });
    // The gateway as the app runs it: the fast path reads the connection (fast-path.ts), Node's server only what it leaves.
    const server = http.createServer((req, res) => void gateway.handle(req, res));
    attachFastPath(server, { gateway: () => gateway });
    // The gateway's Node path alone (Node's http server and client), for comparison.
    const nodeServer = http.createServer((req, res) => void gateway.handle(req, res));
    await new Promise<void>((r) => nodeServer.listen(0, "127.0.0.1", r));
    const baselineDir = argValue("--baseline");
    const baseGateway = baselineDir
      ? ((await import(pathToFileURL(path.resolve(baselineDir, "src/server/gateway/gateway.ts")).href)) as { createGateway: typeof createGateway }).createGateway({
          fleet,
          guard: { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined },
        })
      : null;
    const baseServer = baseGateway ? http.createServer((req, res) => void baseGateway.handle(req, res)) : null;
    if (baseServer) await new Promise<void>((r) => baseServer.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const gwPort = (server.address() as AddressInfo).port;
    const floorAgent = new http.Agent({ keepAlive: true, maxSockets: 16, timeout: 4000 });
    const floor = http.createServer((req, res) => {
      const up = http.request({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers, agent: floorAgent }, (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      });
      up.on("error", () => res.destroy());
      req.pipe(up);
    });
    await new Promise<void>((r) => floor.listen(0, "127.0.0.1", r));
    const floorPort = (floor.address() as AddressInfo).port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1, timeout: 2000 });
    const body = JSON.stringify({ model: "tiny", messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: "root ::= [a-z]+" });
    const once = (p: number) =>
      new Promise<number>((resolve, reject) => {
        const t0 = performance.now();
        const req = http.request({ host: "127.0.0.1", port: p, path: "/v1/chat/completions", method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } }, (res) => {
          res.resume();
          res.on("end", () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`status ${res.statusCode}`))));
        });
        req.on("error", reject);
        req.end(body);
      });
    for (let i = 0; i < 100; i++) {
      await once(port);
      await once(floorPort);
      await once(gwPort);
      await once((nodeServer.address() as AddressInfo).port);
      if (baseServer) await once((baseServer.address() as AddressInfo).port);
    }
    const legs = [
      { name: "direct", port, times: [] as number[], added: [] as number[] },
      { name: "node floor", port: floorPort, times: [] as number[], added: [] as number[] },
      { name: "gateway", port: gwPort, times: [] as number[], added: [] as number[] },
      { name: "node path", port: (nodeServer.address() as AddressInfo).port, times: [] as number[], added: [] as number[] },
      ...(baseServer ? [{ name: "baseline", port: (baseServer.address() as AddressInfo).port, times: [] as number[], added: [] as number[] }] : []),
    ];
    const overFloor: number[] = [];
    const overBase: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      // A round: one request per leg, in rotating order, so no leg always follows the same one.
      const got = new Map<string, number>();
      for (let k = 0; k < legs.length; k++) {
        const leg = legs[(k + i) % legs.length]!;
        const t = await once(leg.port);
        leg.times.push(t);
        got.set(leg.name, t);
      }
      for (const leg of legs) leg.added.push(got.get(leg.name)! - got.get("direct")!);
      overFloor.push(got.get("gateway")! - got.get("node floor")!);
      if (baseServer) overBase.push(got.get("gateway")! - got.get("baseline")!);
    }
    const lines = [`gateway code path alone (in-process, no Next, no database), ${PAIRS} rounds of one request per leg in rotating order, c=1, short chat completion (4 tokens):`];
    for (const leg of legs) {
      lines.push(`  ${leg.name.padEnd(10)} p50 ${ms(percentile(leg.times, 50), 2)}  p99 ${ms(percentile(leg.times, 99), 2)}` + (leg.name === "direct" ? "" : `   added (paired): p50 ${ms(percentile(leg.added, 50), 3)}  p90 ${ms(percentile(leg.added, 90), 3)}`));
    }
    lines.push(`  gateway minus node floor (paired): p50 ${ms(percentile(overFloor, 50), 3)}  p90 ${ms(percentile(overFloor, 90), 3)}`);
    if (baseServer) lines.push(`  gateway minus baseline (paired): p50 ${ms(percentile(overBase, 50), 3)}  p10 ${ms(percentile(overBase, 10), 3)}  p90 ${ms(percentile(overBase, 90), 3)}`);
    lines.push(`  load average now: ${os.loadavg().map((x) => x.toFixed(1)).join(" ")} on ${os.cpus().length} cores`);
    process.stdout.write(`${lines.join("\n")}\n`);
    agent.destroy();
    floorAgent.destroy();
    gateway.close();
    server.close();
    nodeServer.close();
    floor.close();
    baseGateway?.close();
    baseServer?.close();
  } finally {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
