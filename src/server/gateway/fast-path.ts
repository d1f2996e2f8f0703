/**
 * The gateway's fast path: reads HTTP/1.1 requests on the app's connections
 * itself and answers the usual gateway request (a POST or GET to a route of
 * routes.ts, with a Content-Length body) without Node's http server or
 * client; raw-upstream.ts relays the answer. Measured on this 2-core
 * machine (bench/gateway.ts; front.ts has the figures), Node's http server
 * and client cost about 0.5 ms a request more than this, against nginx's
 * 0.1 ms for the whole relay.
 *
 * Everything else goes on to Node's http server (Next, and the gateway's
 * own Node path in front.ts), handed the connection with the bytes already
 * read put back (`unshift`), at a request boundary:
 * - the first request of a connection that is not a gateway route, and any
 *   later one (a connection is handed over once, and stays with Node);
 * - a request this path does not read itself: not HTTP/1.1, a chunked or
 *   `Expect` body, an upgrade, a header line it cannot read, a repeated
 *   Host, Content-Type, Content-Length or Authorization, a head longer than
 *   the server's maxHeaderSize, or a body over the gateway's bound: Node's
 *   parser gives those their proper answers (400, 413, 431, …);
 * - any request while the gateway is not yet made (the app starting).
 *
 * Connection rules, as Node's server keeps them: keep-alive unless the
 * client says `Connection: close`; a client's end (FIN) ends the request in
 * progress (the gateway sees the client gone, the upstream request is
 * destroyed); idle connections close after the server's keepAliveTimeout;
 * a request must arrive whole within its requestTimeout; pipelined requests
 * are answered in order. Bounds: the head (maxHeaderSize), the body (the
 * gateway's), and bytes read ahead while a request is served.
 */
import http, { STATUS_CODES, type IncomingHttpHeaders } from "node:http";
import type { Socket } from "node:net";
import type { Gateway, RawClient, RawClientRequest } from "./gateway";
import { errorBody, errorHeaders, GatewayError } from "./openai-error";
import type { AnswerHead, AnswerSink } from "./raw-upstream";
import { MAX_BODY_BYTES } from "./request-body";
import { matchRoute } from "./routes";
import { joinPieces } from "./write-joined";

/** Headers whose repeats Node's parser treats specially (first wins, or an error): such requests go to Node. */
const SINGLE = new Set(["host", "content-type", "content-length", "authorization", "transfer-encoding", "expect", "upgrade", "origin", "sec-fetch-site"]);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\0\r\n]/;
const REQUEST_LINE = /^(GET|POST) (\/\S*) HTTP\/1\.1$/;

export interface FastPathOptions {
  /** The gateway, or null while it is not made yet (its requests then wait for `whenReady`, or go to Node without it). */
  gateway: () => Gateway | null;
  /** Settles when `gateway()` is made (asked again for each request that waits: a rejection is not kept). */
  whenReady?: () => Promise<void>;
  /** Bound of a request body (the gateway's). Default MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  /**
   * Where a connection this path does not keep goes, with the bytes read put
   * back. Default: `server`'s own connection handling (Node's http server).
   */
  handOver?: (socket: Socket) => void;
}

type ConnectionListener = (socket: Socket) => void;

/**
 * How often the connections' deadlines are looked at (ms): a deadline is met
 * within this much after it passes. Node's own server checks headersTimeout
 * and requestTimeout every 30 s (connectionsCheckingInterval).
 */
const DEADLINE_SWEEP_MS = 250;

/**
 * Puts the fast path in front of `server`'s own connection handling: every
 * new connection is read here first. Returns a function that puts the
 * server's listeners back (new connections only).
 */
export function attachFastPath(server: http.Server, options: FastPathOptions): () => void {
  const nodeListeners = server.listeners("connection") as ConnectionListener[];
  server.removeAllListeners("connection");
  const open = new Set<FastConnection>();
  // One timer for every connection's deadline (a request's first byte, the rest of its head or body): a
  // request used to arm and clear one of its own (timers: see raw-upstream.ts's Link for what they cost).
  let sweeper: NodeJS.Timeout | null = null;
  const sweep = () => {
    const now = Date.now();
    for (const c of open) c.expireAt(now);
    if (open.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = null;
    }
  };
  const handOver =
    options.handOver ??
    ((socket: Socket) => {
      for (const l of nodeListeners) l.call(server, socket);
    });
  const onConnection = (socket: Socket) => {
    const c = new FastConnection(socket, server, options, handOver, () => open.delete(c));
    open.add(c);
    if (sweeper === null) {
      sweeper = setInterval(sweep, DEADLINE_SWEEP_MS);
      sweeper.unref();
    }
  };
  server.on("connection", onConnection);
  // Node's server.close() closes its idle connections; ours too, or close() would wait for them.
  const closeIdle = server.closeIdleConnections.bind(server);
  server.closeIdleConnections = () => {
    for (const c of open) c.closeIfIdle();
    closeIdle();
  };
  const closeAll = server.closeAllConnections.bind(server);
  server.closeAllConnections = () => {
    for (const c of open) c.socket.destroy();
    closeAll();
  };
  return () => {
    if (sweeper) clearInterval(sweeper);
    sweeper = null;
    server.off("connection", onConnection);
    for (const l of nodeListeners) server.on("connection", l);
    server.closeIdleConnections = closeIdle;
    server.closeAllConnections = closeAll;
  };
}

/** A request head as this path reads it. */
interface Head {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: [string, string][];
  /** Content-Length (0 when none). */
  length: number;
  close: boolean;
  /** Where the body starts in the buffered bytes. */
  bodyStart: number;
}

/** True when `buf` (up to `limit`) has a line feed without a carriage return before it: a head Node must read (it answers 400). */
function hasBareLf(buf: Buffer, limit: number): boolean {
  for (let i = buf.indexOf(10); i !== -1 && i < limit; i = buf.indexOf(10, i + 1)) if (i === 0 || buf[i - 1] !== 13) return true;
  return false;
}

class FastConnection {
  /** Bytes read and not yet used: kept as pieces while a body arrives (joined once), so a large body costs one copy. */
  private chunks: Buffer[] = [];
  private size = 0;
  /** The head of the request whose body is still arriving. */
  private head: Head | null = null;
  /** A request is being answered (reading waits for it). */
  private busy = false;
  /** When the connection is closed unless what it waits for comes (Date.now() ms; 0: no deadline). */
  private deadlineAt = 0;
  /** What the deadline waits for: a request's first byte, the rest of a head, the rest of a body. */
  private waiting: "request" | "head" | "body" | null = null;
  /** The gateway's view of this connection (one per connection, not per request). */
  private readonly rawClient: RawClient = this.client();
  private done = false;
  /** Set when the client ended or must be closed after the current answer. */
  private closeAfter = false;
  private goneWatchers = new Set<() => void>();
  private answerEnded = false;
  private readonly maxHead: number;
  private readonly maxBody: number;
  isGone = false;
  statusCode = 0;

  constructor(
    readonly socket: Socket,
    private readonly server: http.Server,
    private readonly options: FastPathOptions,
    private readonly handOverTo: (socket: Socket) => void,
    private readonly forget: () => void,
  ) {
    this.maxHead = http.maxHeaderSize;
    this.maxBody = options.maxBodyBytes ?? MAX_BODY_BYTES;
    socket.setNoDelay(true);
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("error", this.onError);
    socket.on("close", this.onClose);
    // A new connection's first request: as long as Node allows a head (headersTimeout), not the keep-alive wait.
    this.wait("request", this.server.headersTimeout || 60_000);
  }

  closeIfIdle(): void {
    if (!this.busy && !this.done) this.socket.destroy();
  }

  /** Closes the connection if its deadline passed (the sweep in attachFastPath calls this). */
  expireAt(now: number): void {
    if (this.deadlineAt !== 0 && this.deadlineAt <= now) {
      this.deadlineAt = 0;
      this.socket.destroy();
    }
  }

  /** Sets the deadline for what the connection waits for, unless it already waits for that. */
  private wait(what: "request" | "head" | "body", ms: number): void {
    if (this.waiting === what && this.deadlineAt !== 0) return;
    this.waiting = what;
    this.deadlineAt = ms > 0 ? Date.now() + ms : 0;
  }

  private stopWaiting(): void {
    this.deadlineAt = 0;
    this.waiting = null;
  }

  private readonly onData = (chunk: Buffer) => {
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.busy) {
      // Read ahead (a pipelined request) while one is answered: past a bound, stop reading until it is done.
      if (this.size > this.maxHead + 64 * 1024) this.socket.pause();
      return;
    }
    this.next();
  };

  private readonly onEnd = () => {
    // Node's server without httpAllowHalfOpen: the client's end aborts the request in progress.
    this.closeAfter = true;
    if (this.busy) this.gone();
    // The client sends no more: with nothing of ours left to write, the connection is closed at once (the
    // kernel still sends what it holds, then FIN), sparing a shutdown and its callback; else after our bytes.
    else if (this.socket.writableLength === 0) this.socket.destroy();
    else this.socket.end();
  };

  private readonly onError = () => {
    this.socket.destroy();
  };

  private readonly onClose = () => {
    this.stopWaiting();
    if (this.busy) this.gone();
    this.detach();
  };

  private gone(): void {
    if (this.answerEnded) return;
    const watchers = [...this.goneWatchers];
    this.goneWatchers.clear();
    this.isGone = true;
    for (const w of watchers) w();
  }

  private detach(): void {
    if (this.done) return;
    this.done = true;
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("error", this.onError);
    this.socket.off("close", this.onClose);
    this.forget();
  }

  /** The buffered bytes as one buffer (joined at most once per arrival). */
  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Gives the connection to Node's server (or `handOver`) with what was read put back. */
  private handOver(): void {
    this.stopWaiting();
    const rest = this.size > 0 ? this.joined() : null;
    this.chunks = [];
    this.size = 0;
    this.head = null;
    this.detach();
    if (this.socket.isPaused()) this.socket.resume();
    if (rest) this.socket.unshift(rest);
    this.handOverTo(this.socket);
  }

  /** Reads the next request from what is buffered; answers it, hands the connection over, or waits for more. */
  private next(): void {
    if (this.done || this.busy) return;
    if (this.size === 0) {
      if (this.closeAfter) this.socket.end();
      else this.wait("request", this.server.keepAliveTimeout || 5000);
      return;
    }
    const gateway = this.options.gateway();
    if (!gateway) {
      const whenReady = this.options.whenReady;
      if (!whenReady) return this.handOver();
      // Only a gateway request waits for the gateway; the dashboard's go on to Next at once.
      const first = this.joined();
      const lineEnd = first.indexOf("\r\n");
      if (lineEnd === -1) {
        if (first.length > this.maxHead) return this.handOver();
        return this.wait("head", this.server.headersTimeout || 60_000);
      }
      const line = REQUEST_LINE.exec(first.toString("latin1", 0, lineEnd));
      if (!line || matchRoute(line[2]!) === undefined) return this.handOver();
      this.busy = true;
      void whenReady().then(
        () => {
          this.busy = false;
          this.next();
        },
        () => {
          this.busy = false;
          this.handOver();
        },
      );
      return;
    }
    if (this.head === null) {
      const buf = this.joined();
      const end = buf.indexOf("\r\n\r\n");
      if (end === -1) {
        if (buf.length > this.maxHead || hasBareLf(buf, buf.length)) return this.handOver();
        // A head still arriving: it must be whole within headersTimeout (Node's own bound).
        return this.wait("head", this.server.headersTimeout || 60_000);
      }
      if (end > this.maxHead || hasBareLf(buf, end)) return this.handOver();
      const parsed = this.parse(buf.toString("latin1", 0, end), end + 4);
      if (parsed === null) return this.handOver();
      if (parsed === "repeated-host") return this.refuse(400, "bad_request", "the request has more than one Host header (RFC 9112 §3.2)");
      if (parsed.length > this.maxBody) return this.handOver();
      this.head = parsed;
    }
    const head = this.head;
    const need = head.bodyStart + head.length;
    if (this.size < need) return this.wait("body", this.server.requestTimeout || 300_000);
    const buf = this.joined();
    const body = buf.subarray(head.bodyStart, need);
    const rest = buf.subarray(need);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    this.head = null;
    this.stopWaiting();
    if (head.close) this.closeAfter = true;
    this.busy = true;
    this.answerEnded = false;
    this.isGone = false;
    this.statusCode = 0;
    gateway.handleRaw({ method: head.method, url: head.url, headers: head.headers, rawHeaders: head.rawHeaders, body }, this.rawClient).then(
      () => this.answered(),
      () => {
        // The gateway answers its own errors; one that escapes it leaves no answer to trust on this connection.
        this.socket.destroy();
        this.answered();
      },
    );
  }

  /** Answers a request this path refuses itself, and closes the connection (what follows it cannot be trusted). */
  private refuse(status: number, code: string, message: string): void {
    this.closeAfter = true;
    this.busy = true;
    this.rawClient.sendError(new GatewayError(status, "invalid_request_error", code, message));
    this.chunks = [];
    this.size = 0;
    this.answered();
  }

  /** After the gateway is done with a request: the next one, or the end of the connection. */
  private answered(): void {
    this.busy = false;
    this.answerEnded = true;
    this.goneWatchers.clear();
    if (this.done) return;
    if (this.closeAfter || this.isGone) {
      this.socket.end();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume();
    this.next();
  }

  /** The request in a head (latin1, without the blank line), "repeated-host", or null when Node must read it. */
  private parse(text: string, bodyStart: number): Head | "repeated-host" | null {
    const lines = text.split("\r\n");
    const m = REQUEST_LINE.exec(lines[0]!);
    if (!m) return null;
    const url = m[2]!;
    if (matchRoute(url) === undefined) return null;
    const headers: Record<string, string> = {};
    const rawHeaders: [string, string][] = [];
    let length = 0;
    let close = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      if (colon <= 0) return null;
      const name = line.slice(0, colon);
      const value = line.slice(colon + 1).trim();
      if (!TOKEN.test(name) || BAD_VALUE.test(value)) return null;
      const key = name.toLowerCase();
      // `Upgrade: h2c` (curl --http2 on http://) may be ignored and answered in HTTP/1.1 (RFC 9110 §7.8); any other upgrade goes to Node.
      if (key === "upgrade" && value.toLowerCase() === "h2c") continue;
      if (key === "transfer-encoding" || key === "expect" || key === "upgrade") return null;
      const had = headers[key];
      if (had !== undefined) {
        // Node's parser keeps the first Host and serves the request; a second one is refused here.
        if (key === "host") return "repeated-host";
        if (SINGLE.has(key)) return null;
        headers[key] = key === "cookie" ? `${had}; ${value}` : `${had}, ${value}`;
      } else headers[key] = value;
      if (key === "content-length") {
        if (!/^\d{1,15}$/.test(value)) return null;
        length = Number(value);
      } else if (key === "connection") close ||= /(^|,)\s*close\s*(,|$)/i.test(value);
      rawHeaders.push([name, value]);
    }
    return { method: m[1]!, url, headers, rawHeaders, length, close, bodyStart };
  }

  private write(head: string, body?: Buffer | string): void {
    this.socket.cork();
    this.socket.write(head, "latin1");
    if (body !== undefined && body.length > 0) this.socket.write(body);
    this.socket.uncork();
  }

  private statusLine(status: number): string {
    return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
  }

  private connectionHeader(): string {
    return this.closeAfter ? "Connection: close\r\n" : "Connection: keep-alive\r\n";
  }

  private whole(status: number, headers: Record<string, string>, body: string): void {
    if (this.statusCode !== 0 || this.socket.destroyed) return;
    this.statusCode = status;
    let head = this.statusLine(status);
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    head += `Content-Length: ${Buffer.byteLength(body)}\r\n${this.connectionHeader()}\r\n`;
    this.write(head, body);
  }

  private client(): RawClient {
    const conn = this;
    return {
      get gone() {
        return conn.isGone;
      },
      onGone(cb) {
        if (conn.isGone) {
          cb();
          return () => undefined;
        }
        conn.goneWatchers.add(cb);
        return () => conn.goneWatchers.delete(cb);
      },
      get statusCode() {
        return conn.statusCode;
      },
      sendError(err: GatewayError, headers?: Record<string, string>) {
        if (conn.statusCode !== 0) {
          conn.socket.destroy();
          return;
        }
        const h = errorHeaders(err);
        if (headers) Object.assign(h, headers);
        conn.whole(err.status, h, errorBody(err));
      },
      sendJson(status, value) {
        conn.whole(status, { "Content-Type": "application/json", "Cache-Control": "no-store" }, JSON.stringify(value));
      },
      sink: (onData) => conn.sink(onData),
      destroy: () => conn.socket.destroy(),
    };
  }

  /** Writes one upstream answer: its head with the first piece of body (a stream's with what came in the same read of the server, if anything), then each read's body framed for this client in one write. */
  private sink(onData?: (chunk: Buffer) => void): AnswerSink {
    const conn = this;
    let pendingHead: string | null = null;
    /** The head waits only for the end of the read it came in (a stream's). */
    let headNow = false;
    let chunked = false;
    let started = false;
    // One wait for 'drain' at a time: the upstream may hand over more pieces it had read before it paused.
    let waking: (() => void) | null = null;
    const onDrain = () => {
      const w = waking;
      waking = null;
      w?.();
    };
    /** Writes the head if it waits, `pieces` framed for this client, and the closing chunk when `last` (one write). */
    const write = (pieces: readonly Buffer[], last: boolean): boolean => {
      const { buf, bodyAt, bodyLength } = joinPieces(pendingHead, pieces, chunked, last);
      pendingHead = null;
      if (bodyLength > 0) onData?.(buf.subarray(bodyAt, bodyAt + bodyLength));
      return conn.socket.destroyed ? true : conn.socket.write(buf);
    };
    return {
      get started() {
        return started;
      },
      head(h: AnswerHead) {
        started = true;
        conn.statusCode = h.status;
        chunked = h.length === null;
        let head = conn.statusLine(h.status);
        for (const [k, v] of h.headers) head += `${k}: ${v}\r\n`;
        head += chunked ? "Transfer-Encoding: chunked\r\n" : `Content-Length: ${h.length}\r\n`;
        head += `${conn.connectionHeader()}\r\n`;
        pendingHead = head;
        // A stream: its client sees the answer begin before the first token, with what came in the same read
        // of the server (the read ends with `data` or `end`: AnswerSink.data); another answer's head waits for
        // its first piece.
        headNow = h.streamed;
      },
      data(pieces, resume) {
        if (pieces.length === 0 && !(headNow && pendingHead !== null)) return true;
        headNow = false;
        // One write per read of the server: the head (while it waits for the first piece), the read's pieces
        // framed as one chunk. The pieces are lent: this copy is the one the answer gets.
        const ok = write(pieces, false);
        if (!ok && waking === null) {
          waking = resume;
          conn.socket.once("drain", onDrain);
        }
        return ok;
      },
      end(last) {
        if (last !== undefined) write(last, true);
        else if (!conn.socket.destroyed && (pendingHead !== null || chunked)) write([], true);
      },
      cut() {
        conn.socket.destroy();
      },
      error(err) {
        conn.rawClient.sendError(err);
      },
    };
  }
}
