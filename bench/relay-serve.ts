/**
 * The relay alone, for bench/relay-cpu.ts: the gateway's fast path
 * (fast-path.ts) and raw upstream (raw-upstream.ts) over a fixed one-model
 * fleet (no Next, no database, no figures), listening on 127.0.0.1 at a
 * free port, in front of the llama-server at LLAMA_PORT. Prints
 * `{"port":N}` on its first line once it listens; exits on SIGTERM.
 *
 * bench/relay-cpu.ts bundles this file with esbuild once per checkout, its
 * `../src/` imports (and one-model-fleet.ts's) taken from that checkout, as scripts/build-gateway.mjs
 * bundles the gateway for the image.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { attachFastPath } from "../src/server/gateway/fast-path.ts";
import { createGateway } from "../src/server/gateway/gateway.ts";
import { oneModelFleet } from "./one-model-fleet.ts";

const llamaPort = Number(process.env.LLAMA_PORT);
if (!Number.isInteger(llamaPort) || llamaPort <= 0) throw new Error("relay-serve: set LLAMA_PORT to the llama-server's port");

const fleet = oneModelFleet("bench", { host: "127.0.0.1", port: llamaPort }, { parallel: 16, concurrency: 16, queueLimit: 64 });

const gateway = createGateway({ fleet, guard: { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined } });
const server = http.createServer((req, res) => void gateway.handle(req, res));
attachFastPath(server, { gateway: () => gateway });
server.listen(0, "127.0.0.1", () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.on("SIGTERM", () => process.exit(0));
