/**
 * The relay's deadlines, met by one sweep per upstream and per listener
 * (raw-upstream.ts, fast-path.ts) rather than a timer per request:
 * - a server silent past idleTimeoutMs: 504 before any of the answer, a cut
 *   answer after its head;
 * - a kept-alive connection to a server idle for FREE_SOCKET_TIMEOUT_MS is
 *   not used again, and is closed;
 * - a client connection: a head that does not arrive whole within the
 *   server's headersTimeout, and a kept-alive connection idle past its
 *   keepAliveTimeout, are closed.
 * The servers are stand-ins: llama-server does not fall silent on demand.
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { attachFastPath } from "./fast-path";
import type { Gateway } from "./gateway";
import { createRawUpstream } from "./raw-upstream";
import { collectAnswer } from "./testing/answer-sink";
import { FREE_SOCKET_TIMEOUT_MS } from "./upstream";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A stand-in upstream: `onRequest` gets each request's socket (a head seen); counts connections and their closes. */
async function standIn(onRequest: (s: net.Socket) => void): Promise<{ port: number; opened: () => number; closed: () => number }> {
  let opened = 0;
  let closed = 0;
  const server = net.createServer((s) => {
    opened += 1;
    s.on("close", () => (closed += 1));
    s.on("error", () => undefined);
    s.on("data", (d) => {
      if (d.includes("\r\n\r\n")) onRequest(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => {
    server.close();
    server.unref();
  });
  return { port: (server.address() as net.AddressInfo).port, opened: () => opened, closed: () => closed };
}

async function until(what: string, ok: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - t0;
}

describe("raw upstream deadlines", () => {
  it("a server that never answers: 504 upstream_timeout after idleTimeoutMs, not before, and its connection closed", async () => {
    const up = await standIn(() => undefined); // stand-in-silent-upstream
    const relay = createRawUpstream({ idleTimeoutMs: 400 });
    cleanups.push(() => relay.close());
    const { sink, done } = collectAnswer();
    const t0 = Date.now();
    const outcome = await relay.forward({ method: "POST", path: "/completion", headers: [], body: Buffer.from("{}") }, { key: "silent", host: "127.0.0.1", port: up.port }, sink, () => () => undefined, () => "model silent");
    const took = Date.now() - t0;
    expect(outcome.status).toBe(504);
    expect((await done).body).toMatch(/^504 upstream_timeout: model silent: no answer for/);
    expect(took).toBeGreaterThanOrEqual(390);
    expect(took).toBeLessThan(3000);
    await until("the silent connection to close", () => up.closed() === 1, 2000);
  });

  it("a stream that falls silent after its head: the answer is cut (the client must not see it as complete)", async () => {
    const up = await standIn((s) => s.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n"));
    const relay = createRawUpstream({ idleTimeoutMs: 300 });
    cleanups.push(() => relay.close());
    const { sink, done } = collectAnswer();
    await relay.forward({ method: "POST", path: "/completion", headers: [], body: Buffer.from("{}") }, { key: "half", host: "127.0.0.1", port: up.port }, sink, () => () => undefined, "model half");
    const got = await done;
    expect(got.how).toBe("cut");
    expect(got.head?.status).toBe(200);
    expect(got.body).toBe("data: ");
  });

  it(`a kept-alive connection idle for FREE_SOCKET_TIMEOUT_MS (${FREE_SOCKET_TIMEOUT_MS} ms) is not used again, and is closed`, async () => {
    const up = await standIn((s) => s.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"));
    const relay = createRawUpstream();
    cleanups.push(() => relay.close());
    const target = { key: "pooled", host: "127.0.0.1", port: up.port };
    const ask = async () => {
      const { sink, done } = collectAnswer();
      await relay.forward({ method: "GET", path: "/props", headers: [], body: null }, target, sink, () => () => undefined, "model pooled");
      return done;
    };
    expect((await ask()).body).toBe("{}");
    expect((await ask()).body).toBe("{}");
    expect(up.opened()).toBe(1); // kept alive and used again
    const closedAfter = await until("the idle pooled connection to close", () => up.closed() === 1, FREE_SOCKET_TIMEOUT_MS + 3000);
    expect(closedAfter).toBeGreaterThanOrEqual(FREE_SOCKET_TIMEOUT_MS - 100);
    expect((await ask()).body).toBe("{}");
    expect(up.opened()).toBe(2);
  }, 15_000);
});

describe("fast path deadlines (client connections)", () => {
  /** A server with the fast path in front and a stand-in gateway that answers every request 200 at once. */
  async function fastServer(set: (s: http.Server) => void): Promise<number> {
    const server = http.createServer((_req, res) => res.end());
    set(server);
    const gateway = {
      handles: () => true,
      handle: () => Promise.resolve(),
      handleRaw: (_req, client) => {
        client.sendJson(200, { ok: true });
        return Promise.resolve();
      },
      close: () => undefined,
    } as Gateway;
    attachFastPath(server, { gateway: () => gateway });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => {
      server.closeAllConnections();
      server.close();
    });
    return (server.address() as net.AddressInfo).port;
  }

  function connect(port: number): Promise<{ socket: net.Socket; closedIn: (timeoutMs: number) => Promise<number>; text: () => string }> {
    return new Promise((resolve, reject) => {
      let text = "";
      let closed = false;
      const socket = net.connect({ host: "127.0.0.1", port }, () => resolve({ socket, closedIn: (t) => until("the server to close the connection", () => closed, t), text: () => text }));
      socket.on("data", (d) => (text += d.toString()));
      socket.on("close", () => (closed = true));
      socket.on("error", reject);
    });
  }

  it("a head that does not arrive whole within headersTimeout: the connection is closed", async () => {
    const port = await fastServer((s) => (s.headersTimeout = 400));
    const c = await connect(port);
    const t0 = Date.now();
    c.socket.write("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    await c.closedIn(3000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    expect(c.text()).toBe("");
  });

  it("a kept-alive connection idle past keepAliveTimeout after an answer is closed; one in use is not", async () => {
    const port = await fastServer((s) => (s.keepAliveTimeout = 400));
    const c = await connect(port);
    const body = '{"model":"m"}';
    const ask = () => c.socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    // Requests 300 ms apart, each within the keep-alive time: the connection stays.
    for (let i = 0; i < 3; i++) {
      ask();
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(c.text().match(/HTTP\/1\.1 200/g)?.length).toBe(3);
    expect(c.socket.destroyed).toBe(false);
    const idleFor = await c.closedIn(3000);
    expect(idleFor).toBeGreaterThanOrEqual(90); // 400 ms from the last answer, 300 ms of which already passed
  });
});
