/**
 * The least any relay written on Node can cost, for bench/relay-cpu.ts's `--floor` leg: a byte pipe, one
 * connection to the llama-server at LLAMA_PORT for each client connection, bytes passed both ways through
 * net sockets' 'data' events as they come (no HTTP parsing, no routing, no checks, no figures). Correct only
 * for this bench's traffic (one client connection speaks to one server connection). Prints `{"port":N}` on
 * its first line once it listens on 127.0.0.1; exits on SIGTERM.
 */
import net, { type AddressInfo } from "node:net";

const llamaPort = Number(process.env.LLAMA_PORT);
if (!Number.isInteger(llamaPort) || llamaPort <= 0) throw new Error("node-pipe: set LLAMA_PORT to the llama-server's port");

const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ host: "127.0.0.1", port: llamaPort, noDelay: true });
  client.on("data", (b) => upstream.write(b));
  upstream.on("data", (b) => client.write(b));
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => client.destroy());
  client.on("error", () => upstream.destroy());
  upstream.on("error", () => client.destroy());
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`));
process.on("SIGTERM", () => process.exit(0));
