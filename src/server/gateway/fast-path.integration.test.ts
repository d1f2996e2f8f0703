/**
 * The gateway's hand-written HTTP/1.1 fast path (fast-path.ts, and the relay
 * raw-upstream.ts) seen from the wire: a raw `net` socket is the client where
 * the point is the bytes (pipelining, keep-alive, framing, split writes,
 * malformed heads), the official `openai` client where it is natural. The
 * fixture puts the fast path in front of a Node http server as the app does,
 * with a real llama-server, the tiny model and real SQLite behind it; its
 * stand-in for Next answers 404 "next" for every other path.
 */
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { writeTinyModel } from "../../../host-agent/src/gguf/tiny-model";
import type { ChatCompletionCreateParamsStreaming } from "openai/resources/chat/completions";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Model } from "~/generated/prisma/client";
import { waitFor } from "~/server/services/fleet/testing/fixture";
import type { GatewayRequestRecord } from "./metrics-port";
import { MAX_BODY_BYTES } from "./request-body";
import { anySlotBusy, gatewayFixture, GRAMMAR, type GatewayFixture } from "./testing/gateway-fixture";

// ---------------------------------------------------------------------------
// A small raw HTTP/1.1 client: writes bytes as given, reads answers strictly
// by their framing (Content-Length, chunked, or until close).
// ---------------------------------------------------------------------------

interface RawResponse {
  status: number;
  /** Lower-case names; repeats joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** The body came in chunked transfer coding (framing checked and removed). */
  chunked: boolean;
  /** Number of chunks of a chunked body (the last, empty one not counted). */
  chunks: number;
  text(): string;
  json<T = unknown>(): T;
}

/** One response at the start of `buf`, and how many bytes it used; null while incomplete. Throws on bad framing. */
function parseResponse(buf: Buffer, ended: boolean): { res: RawResponse; used: number } | null {
  const headEnd = buf.indexOf("\r\n\r\n");
  if (headEnd === -1) return null;
  const lines = buf.toString("latin1", 0, headEnd).split("\r\n");
  const m = /^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!);
  if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`bad header line ${JSON.stringify(line)}`);
    const k = line.slice(0, colon).toLowerCase();
    const v = line.slice(colon + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  const make = (body: Buffer, used: number, chunked: boolean, chunks: number) => ({
    used,
    res: { status: Number(m[1]), headers, body, chunked, chunks, text: () => body.toString("utf8"), json: <T>() => JSON.parse(body.toString("utf8")) as T },
  });
  const start = headEnd + 4;
  // An interim answer (100 Continue): a head alone.
  if (Number(m[1]) < 200) return make(Buffer.alloc(0), start, false, 0);
  if (headers["content-length"] !== undefined && headers["transfer-encoding"] !== undefined) throw new Error("both Content-Length and Transfer-Encoding");
  if (headers["content-length"] !== undefined) {
    const n = Number(headers["content-length"]);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`bad Content-Length ${headers["content-length"]}`);
    if (buf.length < start + n) return null;
    return make(Buffer.from(buf.subarray(start, start + n)), start + n, false, 0);
  }
  if (headers["transfer-encoding"] !== undefined) {
    if (headers["transfer-encoding"].toLowerCase() !== "chunked") throw new Error(`unexpected Transfer-Encoding ${headers["transfer-encoding"]}`);
    const parts: Buffer[] = [];
    let i = start;
    for (;;) {
      const nl = buf.indexOf("\r\n", i);
      if (nl === -1) return null;
      const sizeLine = buf.toString("latin1", i, nl);
      if (!/^[0-9a-fA-F]+(;.*)?$/.test(sizeLine)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine.slice(0, 40))}`);
      const size = Number.parseInt(sizeLine, 16);
      i = nl + 2;
      if (size === 0) {
        // Trailers (none expected), then the blank line.
        for (;;) {
          const tl = buf.indexOf("\r\n", i);
          if (tl === -1) return null;
          const line = buf.toString("latin1", i, tl);
          i = tl + 2;
          if (line === "") return make(Buffer.concat(parts), i, true, parts.length);
        }
      }
      if (buf.length < i + size + 2) return null;
      parts.push(buf.subarray(i, i + size));
      if (buf.toString("latin1", i + size, i + size + 2) !== "\r\n") throw new Error("a chunk's data is not followed by CRLF");
      i += size + 2;
    }
  }
  // Neither: the body runs until the server closes.
  if (!ended) return null;
  return make(Buffer.from(buf.subarray(start)), buf.length, false, 0);
}

class RawConnection {
  private buf = Buffer.alloc(0);
  /** The server ended or closed the connection. */
  ended = false;
  private wakers: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on("data", (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake();
    });
    const gone = () => {
      this.ended = true;
      this.wake();
    };
    socket.on("end", gone);
    socket.on("close", gone);
    socket.on("error", gone);
  }

  static open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: hostname, port: Number(port) }, () => {
        s.off("error", reject);
        resolve(new RawConnection(s));
      });
      s.once("error", reject);
    });
  }

  private wake(): void {
    for (const w of this.wakers.splice(0)) w();
  }

  private async until<T>(what: string, fn: () => T | null, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = fn();
      if (v !== null) return v;
      if (this.ended) throw new Error(`${what}: the server closed the connection (unread: ${JSON.stringify(this.buf.toString("latin1", 0, 200))})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${what}: not within ${timeoutMs} ms (unread: ${JSON.stringify(this.buf.toString("latin1", 0, 200))})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.wakers.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** Reads the next whole response. */
  response(timeoutMs = 30_000): Promise<RawResponse> {
    return this.until(
      "a whole response",
      () => {
        const p = parseResponse(this.buf, this.ended);
        if (!p) return null;
        this.buf = this.buf.subarray(p.used);
        return p.res;
      },
      timeoutMs,
    );
  }

  /** Waits until the bytes not yet read as a response satisfy `pred` (e.g. the start of a stream). */
  unreadSatisfies(what: string, pred: (text: string) => boolean, timeoutMs = 30_000): Promise<void> {
    return this.until(what, () => (pred(this.buf.toString("utf8")) ? true : null), timeoutMs).then(() => undefined);
  }

  /** Resolves when the server ends the connection; rejects after `timeoutMs`. */
  closedByServer(timeoutMs: number): Promise<void> {
    return this.until("the server to close the connection", () => (this.ended ? true : null), timeoutMs).then(
      () => undefined,
      (err: Error) => {
        if (this.ended) return undefined;
        throw err;
      },
    );
  }

  /** Bytes arrived that no response read took. */
  get unread(): number {
    return this.buf.length;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** An HTTP/1.1 request's bytes: JSON body with Content-Length, Host of the fixture. */
function request(g: GatewayFixture, method: "GET" | "POST", path: string, body?: unknown, extraHeaders: string[] = []): string {
  const host = new URL(g.url).host;
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, ...extraHeaders];
  if (body === undefined) return `${lines.join("\r\n")}\r\n\r\n`;
  const text = typeof body === "string" ? body : JSON.stringify(body);
  lines.push("Content-Type: application/json", `Content-Length: ${Buffer.byteLength(text)}`);
  return `${lines.join("\r\n")}\r\n\r\n${text}`;
}

const chat = (model: string, extra: Record<string, unknown> = {}) => ({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 8, grammar: GRAMMAR, ...extra });

// ---------------------------------------------------------------------------

describe("gateway fast path on the wire (real llama-server, raw sockets and the openai client)", () => {
  let g: GatewayFixture;
  let alpha: Model;
  let longer: Model;
  const records: GatewayRequestRecord[] = [];

  beforeAll(async () => {
    g = await gatewayFixture({ metrics: () => ({ record: (r) => records.push(r), setQueueSource: () => () => undefined }) });
    alpha = await g.addModel("alpha");
    // Room for a long generation (the leaving-client test): one slot, a file trained for 16384 tokens.
    longer = await g.addModel("longer", { ctxSize: 16384, parallel: 1 });
    await writeTinyModel(longer.filePath, { contextLength: 16384 });
    for (const m of [alpha, longer]) {
      const r = await g.f.fleet.start(m.id, { wait: true });
      expect(r.state, r.error ?? "").toBe("ready");
    }
  });
  afterAll(async () => {
    await g?.dispose();
  });

  let conns: RawConnection[] = [];
  afterEach(() => {
    for (const c of conns) c.destroy();
    conns = [];
  });
  async function connect(): Promise<RawConnection> {
    const c = await RawConnection.open(g.url);
    conns.push(c);
    return c;
  }

  /** The tokens llama-server gives for `content`, asked through the gateway by fetch (undici), not by this file's client. */
  async function tokensOf(content: string): Promise<number[]> {
    const r = await fetch(`${g.url}/tokenize`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "alpha", content }) });
    expect(r.status).toBe(200);
    return ((await r.json()) as { tokens: number[] }).tokens;
  }

  describe("pipelining", () => {
    it("two requests pipelined in one write are both answered, in order, whole", async () => {
      const c = await connect();
      // The slow one first: a reordering would answer the tokenize first.
      await c.write(request(g, "POST", "/v1/chat/completions", chat("alpha")) + request(g, "POST", "/tokenize", { model: "alpha", content: "hello world" }));
      const first = await c.response();
      const second = await c.response();
      expect(first.status).toBe(200);
      expect(first.json<{ object: string; choices: { message: { content: string } }[] }>()).toMatchObject({ object: "chat.completion" });
      expect(first.json<{ choices: { message: { content: string } }[] }>().choices[0]!.message.content).toMatch(/^[a-z]+$/);
      expect(second.status).toBe(200);
      expect(second.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf("hello world"));
      expect(c.unread).toBe(0);
      expect(c.ended).toBe(false);
    });

    it("a pipelined batch that goes over to Node's server midway (a non-gateway path) is answered in order", async () => {
      const c = await connect();
      await c.write(request(g, "POST", "/tokenize", { model: "alpha", content: "one" }) + request(g, "GET", "/x") + request(g, "POST", "/tokenize", { model: "alpha", content: "two three" }));
      const [a, b, d] = [await c.response(), await c.response(), await c.response()];
      expect(a.status).toBe(200);
      expect(a.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf("one"));
      expect(b.status).toBe(404);
      expect(b.text()).toBe("next");
      expect(d.status).toBe(200);
      expect(d.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf("two three"));
    });

    it("a pipelined request with a large body (256 KiB) behind a slow one: both answered", async () => {
      const content = "lorem ipsum dolor sit amet ".repeat(10_000);
      const c = await connect();
      await c.write(request(g, "POST", "/v1/chat/completions", chat("alpha")) + request(g, "POST", "/tokenize", { model: "alpha", content }));
      const first = await c.response();
      expect(first.status).toBe(200);
      expect(first.json<{ object: string }>().object).toBe("chat.completion");
      const second = await c.response();
      expect(second.status).toBe(200);
      expect(second.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf(content));
    });
  });

  describe("keep-alive and Connection: close", () => {
    it("three sequential requests on one connection are all answered, and it stays open", async () => {
      const c = await connect();
      for (const content of ["a", "bb", "ccc"]) {
        await c.write(request(g, "POST", "/tokenize", { model: "alpha", content }));
        const r = await c.response();
        expect(r.status).toBe(200);
        expect(r.headers.connection).toBe("keep-alive");
        expect(r.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf(content));
        expect(c.ended).toBe(false);
      }
      await sleep(100);
      expect(c.ended).toBe(false);
    });

    it("Connection: close from the client: the request is answered, then the server closes the connection", async () => {
      const c = await connect();
      await c.write(request(g, "POST", "/v1/chat/completions", chat("alpha"), ["Connection: close"]));
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.headers.connection).toBe("close");
      expect(r.json<{ object: string }>().object).toBe("chat.completion");
      await c.closedByServer(2000);
    });

    it("Connection: close on the first of two Connection lines still closes (a field's lines are one list)", async () => {
      const c = await connect();
      await c.write(request(g, "POST", "/tokenize", { model: "alpha", content: "bye" }, ["Connection: close", "Connection: keep-alive"]));
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.headers.connection).toBe("close");
      await c.closedByServer(2000);
    });
  });

  describe("Upgrade: h2c (what curl --http2 sends on http://)", () => {
    it("is ignored and answered in HTTP/1.1 by the fast path itself, as RFC 9110 §7.8 allows (in the app, Next's server leaves such a request unanswered)", async () => {
      const c = await connect();
      await c.write(request(g, "POST", "/v1/chat/completions", chat("alpha"), ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"]));
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.json<{ object: string }>().object).toBe("chat.completion");
    });
  });

  describe("hand-over to Node's http server", () => {
    it("a non-gateway path first goes to Next; a gateway request after it on the same connection is still answered", async () => {
      const c = await connect();
      await c.write(request(g, "GET", "/x"));
      const next = await c.response();
      expect(next.status).toBe(404);
      expect(next.text()).toBe("next");
      await c.write(request(g, "POST", "/v1/chat/completions", chat("alpha")));
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.json<{ choices: { message: { content: string } }[] }>().choices[0]!.message.content).toMatch(/^[a-z]+$/);
    });

    it("a POST with a chunked body is answered through Node's path, the body reaching llama-server whole", async () => {
      const content = "the quick brown fox jumps over the lazy dog ".repeat(20);
      const body = JSON.stringify({ model: "alpha", content });
      const pieces = [body.slice(0, 7), body.slice(7, 300), body.slice(300, 301), body.slice(301)];
      const host = new URL(g.url).host;
      const c = await connect();
      let bytes = `POST /tokenize HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
      for (const p of pieces) bytes += `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`;
      bytes += "0\r\n\r\n";
      await c.write(bytes);
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf(content));
    });

    it("Expect: 100-continue (curl's way for bodies over 1 KiB): 100 Continue, then the answer", async () => {
      const content = "x".repeat(2000);
      const body = JSON.stringify({ model: "alpha", content });
      const host = new URL(g.url).host;
      const c = await connect();
      await c.write(`POST /tokenize HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
      const interim = await c.response(5000);
      expect(interim.status).toBe(100);
      await c.write(body);
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf(content));
    });

    it("a request split across many small writes (head split mid-line, body split) is answered", async () => {
      const content = "split across writes";
      const bytes = Buffer.from(request(g, "POST", "/tokenize", { model: "alpha", content }));
      const c = await connect();
      // 1 to 5 bytes a write, with a pause between: each arrives on its own.
      const sizes = [1, 3, 5, 2, 4];
      for (let i = 0, k = 0; i < bytes.length; k++) {
        const n = sizes[k % sizes.length]!;
        await c.write(bytes.subarray(i, i + n));
        i += n;
        await sleep(2);
      }
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf(content));
      // The connection is still good for the next request.
      await c.write(request(g, "POST", "/tokenize", { model: "alpha", content: "again" }));
      expect((await c.response()).status).toBe(200);
    });
  });

  describe("malformed input goes to Node's parser, which refuses it; nothing reaches the gateway or llama-server", () => {
    const body = JSON.stringify({ model: "alpha", prompt: "hi", n_predict: 4, grammar: GRAMMAR });
    const cases: [string, (host: string) => string][] = [
      ["a header line without a colon", (host) => `POST /completion HTTP/1.1\r\nHost: ${host}\r\nX-Broken header line\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`],
      // RFC 9112 §3.2: more than one Host field line: 400.
      ["a repeated Host header (the app's, then a foreign one)", (host) => `POST /completion HTTP/1.1\r\nHost: ${host}\r\nHost: evil.example\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`],
      ["two different Content-Length values", (host) => `POST /completion HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nContent-Length: ${body.length + 1}\r\n\r\n${body}`],
    ];
    /** Sends `raw` on a new connection: answered `status` within 5 s, and nothing reached llama-server. */
    async function expectRefused(raw: string, status: number): Promise<void> {
      const before = records.length;
      const c = await connect();
      await c.write(raw);
      const r = await c.response(5000);
      expect(r.status).toBe(status);
      await sleep(200);
      expect(records.slice(before)).toEqual([]);
    }

    for (const [name, make] of cases) {
      it(`${name}: 400, and the request is not served`, async () => {
        await expectRefused(make(new URL(g.url).host), 400);
      });
    }

    it("a head with bare LF line endings: Node's 400 at once, not a wait for a CRLF that never comes", async () => {
      const host = new URL(g.url).host;
      await expectRefused(`POST /completion HTTP/1.1\nHost: ${host}\nContent-Type: application/json\nContent-Length: ${body.length}\n\n${body}`, 400);
    });

    it("a head longer than the server's maxHeaderSize: Node's 431, and the request is not served", async () => {
      await expectRefused(request(g, "POST", "/completion", body, [`X-Padding: ${"p".repeat(20_000)}`]), 431);
    });

    it("a malformed request pipelined behind a good one: the good one is answered, then Node's 400", async () => {
      const before = records.length;
      const host = new URL(g.url).host;
      const c = await connect();
      await c.write(request(g, "POST", "/tokenize", { model: "alpha", content: "good" }) + `POST /completion HTTP/1.1\r\nHost: ${host}\r\nBroken\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const good = await c.response();
      expect(good.status).toBe(200);
      expect(good.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf("good"));
      const bad = await c.response(5000);
      expect(bad.status).toBe(400);
      // Only the good one (and the comparison's tokenize) reached the gateway.
      expect(records.slice(before).map((x) => x.model)).toEqual(["alpha", "alpha"]);
    });

    it("no Host header: refused, and the request is not forwarded", async () => {
      const before = records.length;
      const c = await connect();
      await c.write(`POST /completion HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      const r = await c.response(5000);
      // RFC 9112 §3.2 and Node's server: 400; the gateway's Host check: 403. Either refuses it.
      expect([400, 403]).toContain(r.status);
      expect(records.slice(before).filter((x) => x.model !== "")).toEqual([]);
    });

    it(`a body larger than the gateway's bound (${MAX_BODY_BYTES / 1024 / 1024} MiB): 413, and nothing reaches llama-server`, async () => {
      const before = records.length;
      const host = new URL(g.url).host;
      const c = await connect();
      const length = MAX_BODY_BYTES + 1;
      // The head and the start of the body: the answer must not wait for the rest.
      await c.write(`POST /completion HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n{"model":"alpha","prompt":"`);
      const r = await c.response(10_000);
      expect(r.status).toBe(413);
      expect(r.json<{ error: { code: string } }>().error.code).toBe("body_too_large");
      // The gateway answered it itself: no model was named to it, nothing was forwarded.
      expect(records.slice(before).map((x) => [x.status, x.model])).toEqual([[413, ""]]);
    });
  });

  describe("streams", () => {
    it("a streamed answer (chunked from llama-server) reaches the openai client as valid framing: every event, and the final one", async () => {
      const params = { ...chat("alpha", { max_tokens: 16 }), stream: true, stream_options: { include_usage: true } } as unknown as ChatCompletionCreateParamsStreaming;
      const stream = await g.client.chat.completions.create(params);
      let contentChunks = 0;
      let text = "";
      let finish: string | null = null;
      let usage: { completion_tokens: number } | null = null;
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        if (choice?.delta?.content) {
          contentChunks++;
          text += choice.delta.content;
        }
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage) usage = chunk.usage;
      }
      expect(text).toMatch(/^[a-z]+$/);
      expect(finish).toBe("length");
      expect(usage?.completion_tokens).toBe(16);
      // One event per token: none lost in the relay's re-framing.
      expect(contentChunks).toBe(16);
    });

    it("on the wire: a streamed /completion comes chunked, each chunk well framed, ending with the last event and the zero chunk", async () => {
      const c = await connect();
      await c.write(request(g, "POST", "/completion", { model: "alpha", prompt: "hi", n_predict: 10, grammar: GRAMMAR, stream: true }));
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.chunked).toBe(true);
      expect(r.headers["content-type"]).toMatch(/^text\/event-stream/);
      const events = r
        .text()
        .split("\n\n")
        .filter((e) => e.trim() !== "")
        .map((e) => JSON.parse(e.replace(/^data: /, "")) as { content: string; stop: boolean });
      expect(events.filter((e) => !e.stop)).toHaveLength(10);
      expect(events.at(-1)!.stop).toBe(true);
      // The connection carries the next request.
      await c.write(request(g, "POST", "/tokenize", { model: "alpha", content: "after" }));
      expect((await c.response()).status).toBe(200);
    });

    it("a request pipelined behind a stream is answered after the stream's last chunk", async () => {
      const c = await connect();
      await c.write(request(g, "POST", "/completion", { model: "alpha", prompt: "hi", n_predict: 20, grammar: GRAMMAR, stream: true }) + request(g, "POST", "/tokenize", { model: "alpha", content: "behind" }));
      const stream = await c.response();
      expect(stream.status).toBe(200);
      expect(stream.chunked).toBe(true);
      expect(stream.text().trimEnd().split("\n\n").at(-1)).toMatch(/"stop":\s*true/);
      const after = await c.response();
      expect(after.status).toBe(200);
      expect(after.json<{ tokens: number[] }>().tokens).toEqual(await tokensOf("behind"));
    });

    it("a client that reads slowly gets the whole stream: the relay pauses and resumes, drops nothing", async () => {
      const c = await connect();
      c.socket.pause();
      await c.write(request(g, "POST", "/completion", { model: "longer", prompt: "hi", n_predict: 6000, ignore_eos: true, stream: true, n_probs: 20 }));
      // Long enough for the stream to fill the socket buffers: with 20 probabilities a token, tens of MB of events.
      await sleep(3000);
      c.socket.resume();
      const r = await c.response(60_000);
      expect(r.status).toBe(200);
      const events = r
        .text()
        .split("\n\n")
        .filter((e) => e.trim() !== "")
        .map((e) => JSON.parse(e.replace(/^data: /, "")) as { stop: boolean; tokens_predicted?: number });
      expect(events.filter((e) => !e.stop)).toHaveLength(6000);
      expect(events.at(-1)).toMatchObject({ stop: true, tokens_predicted: 6000 });
    });

    it("a client that leaves mid-stream (socket destroyed) stops the model's slot soon after", async () => {
      const c = await connect();
      await c.write(request(g, "POST", "/completion", { model: "longer", prompt: "hi", n_predict: 16_000, ignore_eos: true, stream: true }));
      // The head and a few events: the slot is working.
      await c.unreadSatisfies("a few events", (text) => text.split("data: ").length > 4);
      expect(await anySlotBusy(longer)).toBe(true);
      c.destroy();
      // 16000 tokens take this server many seconds (2000 take under one: too few to tell); the slot must be free long before.
      await waitFor("the slot to stop working", async () => !(await anySlotBusy(longer)), 1500, 20);
    });
  });

  describe("llama-server closing kept-alive connections (100 requests, 5 s idle)", () => {
    it("120 sequential requests through one client connection are all answered 200", async () => {
      const c = await connect();
      const statuses: number[] = [];
      for (let i = 0; i < 120; i++) {
        await c.write(request(g, "POST", "/tokenize", { model: "alpha", content: `request ${i}` }));
        const r = await c.response(10_000);
        statuses.push(r.status);
        if (r.status === 200) expect(r.json<{ tokens: number[] }>().tokens.length).toBeGreaterThan(0);
      }
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      // Chat completions too (a second connection pool use).
      for (let i = 0; i < 3; i++) {
        await c.write(request(g, "POST", "/v1/chat/completions", chat("alpha", { max_tokens: 2 })));
        expect((await c.response()).status).toBe(200);
      }
    });

    it("120 requests pipelined in one write: all answered 200, in order (the relay reuses its connection at once after each answer)", async () => {
      const c = await connect();
      let bytes = "";
      for (let i = 0; i < 120; i++) bytes += request(g, "POST", "/tokenize", { model: "alpha", content: "x".repeat(i + 1) });
      await c.write(bytes);
      const lengths: number[] = [];
      const statuses: number[] = [];
      for (let i = 0; i < 120; i++) {
        const r = await c.response(10_000);
        statuses.push(r.status);
        lengths.push(r.status === 200 ? r.json<{ tokens: number[] }>().tokens.length : -1);
      }
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      // Longer content, never fewer tokens: the answers came in the order asked.
      expect(lengths).toEqual([...lengths].sort((a, b) => a - b));
      expect(lengths[119]).toBeGreaterThan(lengths[0]!);
    });

    it("after 6 s idle (past llama-server's keep-alive timeout), a request is answered 200", async () => {
      const warm = await connect();
      await warm.write(request(g, "POST", "/tokenize", { model: "alpha", content: "warm" }));
      expect((await warm.response()).status).toBe(200);
      await sleep(6000);
      // A new client connection: the gateway's own connection to llama-server is the one that sat idle.
      const c = await connect();
      await c.write(request(g, "POST", "/v1/chat/completions", chat("alpha")));
      const r = await c.response();
      expect(r.status).toBe(200);
      expect(r.json<{ object: string }>().object).toBe("chat.completion");
    });
  });
});
