/**
 * raw-upstream.ts: bytes a server sends on a kept-alive connection while no
 * request is out on it (a broken server, or one answering a request twice)
 * must not be read as the next request's answer: that connection is not used
 * again, and the next request gets its own answer on a new one. (The reads
 * go to the exchange in progress, or nowhere: a reader that merely paused
 * the idle connection would hand them to the next exchange.)
 * The server is a stand-in: llama-server does not send stray bytes on demand.
 */
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRawUpstream } from "./raw-upstream";
import { collectAnswer } from "./testing/answer-sink";

let server: net.Server;
let port = 0;
let connections = 0;
beforeAll(async () => {
  // stand-in-stray-bytes-upstream: answers each request with its number; 50 ms after the first answer on a
  // connection, sends a second, unasked-for answer on it.
  let answered = 0;
  server = net.createServer((s) => {
    connections += 1;
    let first = true;
    s.on("data", (d) => {
      if (!d.includes("\r\n\r\n")) return;
      answered += 1;
      const body = `answer ${answered}`;
      s.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      if (first) setTimeout(() => s.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nstray"), 50);
      first = false;
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

it("does not read a server's unasked-for bytes as the next answer", async () => {
  const up = createRawUpstream();
  const target = { key: `127.0.0.1:${port}`, host: "127.0.0.1", port };
  const ask = async () => {
    const { sink, done } = collectAnswer();
    await up.forward({ method: "GET", path: "/props", headers: [], body: null }, target, sink, () => () => undefined, "model");
    return done;
  };
  expect(await ask()).toMatchObject({ head: { status: 200 }, body: "answer 1", how: "end" });
  await new Promise((r) => setTimeout(r, 200)); // the stray answer arrived on the pooled connection
  expect(await ask()).toMatchObject({ head: { status: 200 }, body: "answer 2" });
  expect(connections).toBe(2);
  up.close();
});
