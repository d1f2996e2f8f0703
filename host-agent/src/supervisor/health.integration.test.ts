/**
 * The /health probe against servers on loopback that answer what llama-server
 * answers (200, 503), and against the ways a port can misbehave: nothing
 * listening, a listener that never answers, one that answers something that
 * is not HTTP, one that hangs up. The real llama-server is probed in
 * supervisor.integration.test.ts on every start.
 */
import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../test/harness/ports.ts";
import { isReadyHint, probeHealth } from "./health.ts";

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

async function listen(server: net.Server, host = "127.0.0.1"): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

/** An HTTP server that answers every request with `status`, and remembers what it was asked. */
async function httpServer(status: number, host = "127.0.0.1"): Promise<{ port: number; requests: { url: string; host: string }[] }> {
  const requests: { url: string; host: string }[] = [];
  const srv = http.createServer((req, res) => {
    requests.push({ url: req.url ?? "", host: req.headers.host ?? "" });
    res.writeHead(status, { "content-type": "application/json" });
    res.end(status === 200 ? '{"status":"ok"}' : '{"error":{"code":503,"message":"Loading model"}}');
  });
  return { port: await listen(srv, host), requests };
}

/** A TCP server whose connections get `onConnection`; sockets are destroyed at the end. */
async function tcpServer(onConnection: (s: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => undefined);
    onConnection(s);
  });
  closers.push(async () => {
    for (const s of sockets) s.destroy();
  });
  return listen(srv);
}

describe("probeHealth", () => {
  it("200 is ok, 503 is loading, another status is reported as such; it asks GET /health with a Host header", async () => {
    const ok = await httpServer(200);
    const loading = await httpServer(503);
    const notFound = await httpServer(404);
    expect(await probeHealth("127.0.0.1", ok.port, 2000)).toEqual({ kind: "ok" });
    expect(await probeHealth("127.0.0.1", loading.port, 2000)).toEqual({ kind: "loading" });
    expect(await probeHealth("127.0.0.1", notFound.port, 2000)).toEqual({ kind: "http", status: 404 });
    expect(ok.requests).toEqual([{ url: "/health", host: `127.0.0.1:${ok.port}` }]);
  });

  it("probes an IPv6 loopback listener (host in brackets)", async () => {
    const v6 = await httpServer(200, "::1").catch(() => null);
    if (!v6) return expect.fail("this machine has no IPv6 loopback (::1); the agent probes '::' binds there");
    expect(await probeHealth("::1", v6.port, 2000)).toEqual({ kind: "ok" });
    expect(v6.requests[0]?.host).toBe(`[::1]:${v6.port}`);
  });

  it("nothing listening is 'refused'", async () => {
    const port = await freePort();
    expect(await probeHealth("127.0.0.1", port, 2000)).toEqual({ kind: "refused" });
  });

  it("a listener that never answers times out at the deadline, and the connection is closed", async () => {
    let closed = false;
    const port = await tcpServer((s) => {
      s.resume(); // read what comes (the request), so the hang-up is seen
      s.on("close", () => (closed = true));
    });
    expect(await probeHealth("127.0.0.1", port, 150)).toEqual({ kind: "timeout", ms: 150 });
    await expect.poll(() => closed, { timeout: 2000 }).toBe(true);
  });

  it("a reply that is not HTTP, one that hangs up without a word, and a status line split across packets", async () => {
    const garbage = await tcpServer((s) => s.end("SSH-2.0-OpenSSH_9.6\r\n"));
    const hangUp = await tcpServer((s) => s.end());
    const split = await tcpServer((s) => {
      s.write("HTTP/1.1 2");
      setTimeout(() => s.end("00 OK\r\nContent-Length: 0\r\n\r\n"), 20);
    });
    expect(await probeHealth("127.0.0.1", garbage, 2000)).toEqual({ kind: "error", message: expect.stringMatching(/not an HTTP reply: "SSH-2\.0/) });
    expect(await probeHealth("127.0.0.1", hangUp, 2000)).toEqual({ kind: "error", message: "the connection closed before a reply" });
    expect(await probeHealth("127.0.0.1", split, 2000)).toEqual({ kind: "ok" });
  });
});

describe("isReadyHint", () => {
  it("knows the lines llama-server writes once it serves, in this build's format and older ones", () => {
    for (const line of [
      "0.00.027.780 I srv  llama_server: model loaded",
      "0.00.031.546 I srv  llama_server: listening on http://127.0.0.1:24025",
      "main: model loaded",
      "main: server is listening on http://127.0.0.1:8080 - starting the main loop",
      "srv  update_slots: all slots are idle",
    ]) {
      expect(isReadyHint(line), line).toBe(true);
    }
    for (const line of [
      "0.00.006.128 I srv    load_model: loading model '/models/tiny.gguf'",
      // Older releases print this when HTTP starts, before the model loads.
      "main: HTTP server is listening, hostname: 127.0.0.1, port: 8080, http threads: 7", "llama_model_loader: loaded meta data with 25 key-value pairs", "warning: no usable GPU found"]) {
      expect(isReadyHint(line), line).toBe(false);
    }
  });
});
