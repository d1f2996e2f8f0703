/**
 * upstream.read (the metrics' reads of /props, /metrics, /slots) always settles: a server that sends its
 * headers and then stalls, sends too much, or drops the connection mid-body is an error within the
 * deadline, never a read that waits for ever (which stopped every later metrics tick and app shutdown); a
 * read abandoned by its signal (its server is being stopped) closes its connection at once.
 * The servers here are stand-ins: llama-server does not misbehave on demand.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createUpstream } from "./upstream";

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function standInServer(handler: http.RequestListener): Promise<number> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  s.on("connection", (c) => s.once("close", () => c.destroy()));
  return (s.address() as AddressInfo).port;
}

describe("upstream.read", () => {
  it("headers then silence: rejected at the deadline", async () => {
    const port = await standInServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("partial");
    });
    const up = createUpstream({ maxSockets: 2 });
    const t0 = Date.now();
    await expect(up.read({ host: "127.0.0.1", port, apiKey: null }, "/metrics", { timeoutMs: 300, maxBytes: 1024 })).rejects.toThrow(/within 300 ms/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    up.close();
  });

  it("abandoned by its signal: rejected at once, and the server's request is closed (a server being stopped holds its exit for a request it still owes)", async () => {
    let closed: Promise<void> | null = null;
    const port = await standInServer((req) => {
      // Never answers, as llama-server does with a /metrics task it cancelled at SIGTERM until the client hangs up.
      closed = new Promise((r) => req.socket.once("close", () => r()));
    });
    const up = createUpstream({ maxSockets: 2 });
    const abandon = new AbortController();
    const t0 = Date.now();
    const read = up.read({ host: "127.0.0.1", port, apiKey: null }, "/metrics", { timeoutMs: 10_000, maxBytes: 1024, signal: abandon.signal });
    setTimeout(() => abandon.abort(), 100);
    await expect(read).rejects.toThrow(/read abandoned/);
    expect(Date.now() - t0).toBeLessThan(2_000);
    await closed;
    // Already aborted: no request at all.
    await expect(up.read({ host: "127.0.0.1", port, apiKey: null }, "/props", { timeoutMs: 10_000, maxBytes: 1024, signal: abandon.signal })).rejects.toThrow(/abandoned before it began/);
    up.close();
  });

  it("more than maxBytes: rejected, naming the bound", async () => {
    const port = await standInServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("x".repeat(4096));
    });
    const up = createUpstream({ maxSockets: 2 });
    await expect(up.read({ host: "127.0.0.1", port, apiKey: null }, "/metrics", { timeoutMs: 10_000, maxBytes: 1024 })).rejects.toThrow(/more than 1024 bytes/);
    up.close();
  });

  it("the connection dropped mid-body: rejected", async () => {
    const port = await standInServer((req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": "1000" });
      res.write("only part of it", () => req.socket.destroy());
    });
    const up = createUpstream({ maxSockets: 2 });
    await expect(up.read({ host: "127.0.0.1", port, apiKey: null }, "/metrics", { timeoutMs: 10_000, maxBytes: 1024 })).rejects.toThrow();
    up.close();
  });

  it("a whole answer: resolved with its status and body", async () => {
    const port = await standInServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("llamacpp:prompt_tokens_total 5\n");
    });
    const up = createUpstream({ maxSockets: 2 });
    await expect(up.read({ host: "127.0.0.1", port, apiKey: null }, "/metrics", { timeoutMs: 5_000, maxBytes: 1024 })).resolves.toMatchObject({ status: 200, body: "llamacpp:prompt_tokens_total 5\n" });
    up.close();
  });
});
