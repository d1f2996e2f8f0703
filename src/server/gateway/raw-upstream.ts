/**
 * Forwards one request to a llama-server over a kept-alive connection that
 * this module writes and reads itself (HTTP/1.1, RFC 9112), for the fast
 * path (fast-path.ts). Node's http client costs about 0.3 ms a request more
 * than this on the 2-core machine the benchmark runs on (bench/gateway.ts,
 * the `front` figures in front.ts), which is the whole budget the issue
 * gives the gateway over nginx.
 *
 * What it writes: `METHOD PATH HTTP/1.1`, Host, the client's end-to-end
 * headers (hop-by-hop ones, Authorization and Cookie dropped), the server's
 * key as `Authorization: Bearer`, Content-Length, then the body in the same
 * write.
 *
 * What it reads: the status line and headers (at most MAX_HEAD_BYTES), then
 * the body framed by Content-Length, chunked transfer coding, or the
 * connection's close, handed to the sink as it arrives: the body bytes of
 * one read together (chunk framing removed: the sink frames them again for
 * its client, one write per read however many chunks the read held).
 * Nothing is collected.
 *
 * Connections: one pool per target (`RawTarget.key`). A connection goes back
 * to the pool after an answer that ended by its framing, unless the server
 * said `Connection: close` or the answer was a stream (llama-server closes
 * after a streamed answer though its headers say keep-alive). A pooled
 * connection is not used after FREE_SOCKET_TIMEOUT_MS idle, below
 * llama-server's own keep-alive timeout (the sweep below closes it within a
 * second more), and is dropped when the server closes it or sends bytes,
 * or when it ends with the ssh connection under it (a channel: see `Link`'s
 * `over`). A request that meets a pooled connection the server closed
 * (nothing of the answer read) is sent again once on a new connection.
 *
 * Deadlines: connecting (`connectTimeoutMs`), and silence from the server
 * (`idleTimeoutMs` without a byte, met within min(1 s, idleTimeoutMs / 4):
 * one sweep timer per upstream reads every exchange's last byte time, not
 * a timer per request), after which the answer is 504, or the stream is cut.
 */
import net from "node:net";
import type { Duplex } from "node:stream";
import { connectRefused, cannotReachHost } from "./connect-refused";
import { errorBody, GatewayError } from "./openai-error";
import { FREE_SOCKET_TIMEOUT_MS, type ForwardOutcome } from "./upstream";
import { writeJoined } from "./write-joined";

/** Request headers not sent on: the connection's own, and the client's credentials for the gateway. */
const DROP_REQUEST = new Set(["host", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "authorization", "cookie", "content-length", "expect", "http2-settings"]);
/** Answer headers not sent on: the connection's own, and llama-server's CORS grant (the app has its own Origin policy). */
export const DROP_RESPONSE = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length", "access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods", "access-control-allow-headers"]);

/** Longest status line plus headers read from a server (bytes). */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunk size line or trailer line read from a server (bytes). */
const MAX_CHUNK_LINE_BYTES = 4096;
/** Largest chunk size read (bytes): past it the sum of hex digits would leave a double's exact integers. */
const MAX_CHUNK_SIZE = 2 ** 48;

/** A hex digit's value (0–15), or -1 for any other byte. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * How long a request whose server closed its connection mid-answer waits for
 * the notice that the server is stopping (`onEnding`), to tell its client why
 * rather than cut it (ms). llama-server, sent SIGTERM, may end its requests and
 * exit within a few ms, before the fleet's record of its stop reaches the
 * gateway (20–60 ms later in a trial). Without a notice in time: cut, as before.
 * The same wait for a connection refused (nothing listens where the server
 * ran, over TCP or an ssh channel: it has just crashed, the crash's notice on
 * the way; nothing was sent):
 * a trial's request got `502 nothing listens` in the 25 ms after a `kill -9`.
 * 2 s: with the whole test suite on 2 cores the notice came later than 1 s
 * now and then, and the stream was cut with no word (the openai client's
 * `TypeError: terminated`).
 */
const ENDING_NOTICE_WAIT_MS = 2000;

/** Pooled connections kept per target. */
const MAX_FREE_PER_TARGET = 16;

/** Where a request goes: a pool key, how to open a connection, and the Host and key to send. */
export interface RawTarget {
  /** Connections are pooled per key (host and port; the ssh host for channels). */
  key: string;
  host: string;
  port: number;
  apiKey?: string | null;
  /** Opens a connection (default: TCP to host:port). */
  connect?: () => Promise<Duplex>;
}

/** How the answer is framed for the sink: `length` bytes, or an unknown length (chunked, or until close). */
export interface AnswerHead {
  status: number;
  /** End-to-end headers as [name, value] in the server's order (DROP_RESPONSE removed). */
  headers: [string, string][];
  /** Content-Length when the server gave one; null when the length is unknown. */
  length: number | null;
  /** text/event-stream. */
  streamed: boolean;
}

/** The client side of a forward: fast-path.ts writes to its socket, node-exchange.ts to a ServerResponse. */
export interface AnswerSink {
  head(h: AnswerHead): void;
  /**
   * The body bytes of one read from the server, in order (several pieces
   * when the read held several chunks of the chunked coding). The pieces and
   * the array are lent for this call only (views of the connection's read
   * buffer, reused by the next read): the sink copies what it keeps or
   * writes. False asks for a pause until the sink calls `resume`.
   *
   * The read that held the head ends with `data` (no pieces when it held no
   * body) or `end`: a sink may keep the head until then and write it with
   * what followed it in the same read (llama-server sends a stream's head
   * with its first event).
   */
  data(pieces: readonly Buffer[], resume: () => void): boolean;
  /** The answer ended whole; `last`: the body bytes of its last read, lent as in `data` (written with the end). */
  end(last?: readonly Buffer[]): void;
  /** The answer was cut after its head went out: the client must see a broken answer, not a complete-looking one. */
  cut(): void;
  /** Whether the head went out (an error can then no longer be an answer of its own). */
  readonly started: boolean;
  /** Answers with the gateway's own error (nothing went out yet). */
  error(err: GatewayError): void;
}

export interface RawRequest {
  method: string;
  /** Request target (path and query). */
  path: string;
  /** The client's headers as [name, value]; names in any case. */
  headers: Iterable<[string, string]>;
  body: Buffer | null;
}

/** Registers a callback for the client's leaving (called at once if it already left); returns the unregister. */
export type ClientGone = (cb: () => void) => () => void;

/**
 * Registers a callback for the model's server going away under the request
 * (a stop or restart of the model: gateway.ts); returns the unregister. The
 * callback's error is what the client is told.
 */
export type ServerEnding = (cb: (err: GatewayError) => void) => () => void;

/**
 * An error as one more event of a stream (text/event-stream): `data:` and the
 * error object in OpenAI's shape, which openai-node's and openai-python's
 * stream readers raise as an APIError with its message.
 */
export function errorEvent(err: GatewayError): Buffer {
  return Buffer.from(`data: ${errorBody(err)}\n\n`, "utf8");
}

export interface RawUpstreamOptions {
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export interface RawUpstream {
  /**
   * Sends `req` to `target` and relays the answer to `sink`. `onGone`
   * registers what to do when the client leaves (it returns the function
   * that unregisters it): the connection is destroyed, which makes
   * llama-server cancel the task. `describe` names the model in errors (a
   * function: called only when there is an error to name it in).
   *
   * `onEnding` registers what to do when the model's server goes away under
   * the request: the connection is destroyed (llama-server, asked to stop,
   * waits for its requests' connections to close before it exits), and the
   * client is told the error: as the answer when none went out yet; as a
   * last event and a proper end in a stream that is between two events;
   * else the answer is cut.
   */
  forward(req: RawRequest, target: RawTarget, sink: AnswerSink, onGone: ClientGone, describe: string | (() => string), onEnding?: ServerEnding, onSent?: () => void): Promise<ForwardOutcome>;
  close(): void;
}

const enum Body {
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

/**
 * One read buffer for every TCP connection to a llama-server in this thread
 * (net's `onread`). It spares each read the Readable stream's machinery
 * (push, its buffer list, the 'data' event): a streamed answer is one read
 * per token. A read's bytes are lent to the exchange for the callback only
 * (`Handlers.read`): the sink copies them once, into what it writes to its
 * client; a head that arrives in parts is copied as it is kept.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** What a connection's events go to while it carries an exchange. */
interface Handlers {
  /** One read's bytes, lent for this call (see READ_BUFFER); false stops reading until the socket is resumed. */
  read(chunk: Buffer): boolean;
  error(err: Error): void;
  /** The server ended or closed the connection. */
  end(): void;
}

/**
 * A connection to a server. Its listeners are attached once, when it opens,
 * and pass its events to the exchange it carries (`current`); while it waits
 * in the pool (`current` null) any event retires it: bytes, an error, the
 * server's end. A request used to attach and remove four listeners and arm
 * and clear three timers (this connection's silence, its idle time in the
 * pool, the client's keep-alive wait): in a `perf record` of the relay at
 * c=1 on the 2-core machine of bench/gateway.ts, Node's setTimeout,
 * clearTimeout and its timer list's insert and unenroll were ~8 % of the
 * relay's samples.
 */
interface Link {
  socket: Duplex;
  current: Handlers | null;
  /** When it went back to the pool (Date.now() ms). */
  idleSince: number;
  /**
   * The connection ended, closed or failed (its events said so): never handed out again. `socket.destroyed`
   * cannot tell this for an ssh channel: ssh2's Channel.destroy() sends EOF and CLOSE and leaves `destroyed`
   * false, and a write to it after that is dropped without an error. A pooled channel whose ssh connection
   * died (ssh2 ends every channel of a closed connection) looked usable, and a request sent on it hung with no
   * first byte until the silence deadline (10 min by default).
   */
  over: boolean;
}

/**
 * What a `RawTarget.connect` connection may carry besides a Duplex: `keepAlive()` false says it is not to be kept for
 * another request (worker-tunnels.ts: a channel the main thread's way, made while the worker's own ssh connection
 * to the host was not up; once it is, new requests go over it, not over the channel the pool would hand out).
 */
export interface KeptAliveWhile {
  keepAlive?: () => boolean;
}

/** Whether a pooled connection may carry a request: not ended, closed, failed or destroyed, its writes still go out, and its maker still wants it kept. */
function usable(link: Link): boolean {
  return !link.over && !link.socket.destroyed && link.socket.writable && (link.socket as KeptAliveWhile).keepAlive?.() !== false;
}

/** Attaches a link's listeners (once); `data`: the socket has no `onread` (an ssh channel), so its reads come as 'data' events. */
function listen(link: Link, data: boolean): void {
  const { socket } = link;
  if (data)
    socket.on("data", (chunk: Buffer) => {
      const h = link.current;
      if (h === null) retire(link);
      else if (!h.read(chunk)) socket.pause();
    });
  // Whether pooled or carrying an exchange, a connection that ended, closed or failed is not used again (Link.over).
  socket.on("error", (err: Error) => {
    link.over = true;
    const h = link.current;
    if (h === null) socket.destroy();
    else h.error(err);
  });
  const ended = () => {
    link.over = true;
    const h = link.current;
    if (h === null) socket.destroy();
    else h.end();
  };
  socket.on("end", ended);
  socket.on("close", ended);
}

/** Closes a connection and marks it never to be used again (an ssh channel stays `destroyed: false`: Link.over). */
function retire(link: Link): void {
  link.over = true;
  link.socket.destroy();
}

/** One exchange in flight, as the silence sweep sees it. */
interface InFlight {
  /** Date.now() of the last byte from the server (or of the request's start). */
  lastByteAt: number;
  socket: Duplex;
}

/** The request's head (latin1); its body follows it in the same write. */
function requestHead(req: RawRequest, target: RawTarget): string {
  let head = `${req.method} ${req.path} HTTP/1.1\r\nHost: ${target.host}:${target.port}\r\n`;
  for (const [name, value] of req.headers) if (!DROP_REQUEST.has(name.toLowerCase())) head += `${name}: ${value}\r\n`;
  if (target.apiKey) head += `Authorization: Bearer ${target.apiKey}\r\n`;
  if (req.body !== null || req.method === "POST") head += `Content-Length: ${req.body?.length ?? 0}\r\n`;
  return `${head}\r\n`;
}

/** Parses a status line and headers (latin1 text without the final CRLF CRLF); null when malformed. */
export function parseAnswerHead(text: string): { status: number; headers: [string, string][] } | null {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
  if (!m) return null;
  const headers: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
  }
  return { status: Number(m[1]), headers };
}

export function createRawUpstream(options: RawUpstreamOptions = {}): RawUpstream {
  const idleTimeoutMs = options.idleTimeoutMs ?? 10 * 60_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  const pools = new Map<string, Link[]>();
  const inFlight = new Set<InFlight>();
  let closed = false;
  /**
   * One timer for every deadline of this upstream: an exchange's silence
   * (idleTimeoutMs) and a pooled connection's idle time (FREE_SOCKET_TIMEOUT_MS;
   * `take` never hands out one idle longer, the sweep closes it). Runs while
   * anything is in flight or pooled; a deadline is met within `sweepMs`.
   */
  const sweepMs = Math.max(10, Math.min(1000, Math.floor(idleTimeoutMs / 4)));
  let sweeper: NodeJS.Timeout | null = null;
  const sweep = () => {
    const now = Date.now();
    for (const x of inFlight) if (now - x.lastByteAt >= idleTimeoutMs) x.socket.destroy(new Error(`no answer for ${Math.round(idleTimeoutMs / 1000)} s`));
    for (const [key, pool] of pools) {
      for (let i = pool.length - 1; i >= 0; i--) {
        const link = pool[i]!;
        if (!usable(link) || now - link.idleSince >= FREE_SOCKET_TIMEOUT_MS) {
          pool.splice(i, 1);
          retire(link);
        }
      }
      if (pool.length === 0) pools.delete(key);
    }
    if ((inFlight.size === 0 && pools.size === 0) || closed) {
      if (sweeper) clearInterval(sweeper);
      sweeper = null;
    }
  };
  const sweeping = () => {
    if (sweeper !== null || closed) return;
    sweeper = setInterval(sweep, sweepMs);
    sweeper.unref();
  };

  function take(key: string): Link | null {
    const pool = pools.get(key);
    if (!pool) return null;
    const now = Date.now();
    while (pool.length > 0) {
      const link = pool.pop()!;
      // Idle past FREE_SOCKET_TIMEOUT_MS: the server may be closing it (llama-server's keep-alive is 5 s).
      if (usable(link) && now - link.idleSince < FREE_SOCKET_TIMEOUT_MS) return link;
      retire(link);
    }
    return null;
  }

  function give(key: string, link: Link): void {
    link.current = null;
    let pool = pools.get(key);
    if (!pool) pools.set(key, (pool = []));
    // Connections the server closed since the last sweep hold no place.
    if (pool.length >= MAX_FREE_PER_TARGET) for (let i = pool.length - 1; i >= 0; i--) if (!usable(pool[i]!)) pool.splice(i, 1);
    if (closed || pool.length >= MAX_FREE_PER_TARGET || !usable(link)) {
      retire(link);
      return;
    }
    link.idleSince = Date.now();
    pool.push(link);
    sweeping();
  }

  async function open(target: RawTarget): Promise<Link> {
    if (target.connect) {
      const socket = await target.connect();
      const link: Link = { socket, current: null, idleSince: 0, over: false };
      listen(link, true);
      return link;
    }
    return new Promise<Link>((resolve, reject) => {
      const s = net.connect({
        host: target.host,
        port: target.port,
        noDelay: true,
        onread: {
          buffer: READ_BUFFER,
          callback: (n) => {
            const h = link.current;
            if (h !== null) return h.read(READ_BUFFER.subarray(0, n));
            // Bytes while no request is out (a pooled connection): nothing to read them as; do not use it again.
            retire(link);
            return false;
          },
        },
      });
      const link: Link = { socket: s, current: null, idleSince: 0, over: false };
      const timer = setTimeout(() => s.destroy(new Error(`no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      s.once("connect", () => {
        clearTimeout(timer);
        s.off("error", onError);
        listen(link, false);
        resolve(link);
      });
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      s.once("error", onError);
    });
  }

  function failure(err: NodeJS.ErrnoException, target: RawTarget, described: string | (() => string)): GatewayError {
    const describe = typeof described === "string" ? described : described();
    const timeout = /no answer|no connection/.test(err.message);
    const status = timeout ? 504 : 502;
    const refused = connectRefused(err);
    const code = refused ? "upstream_refused" : cannotReachHost(err) ? "host_unreachable" : timeout ? "upstream_timeout" : "upstream_error";
    return new GatewayError(status, "server_error", code, `${describe}: ${refused ? `nothing listens on ${target.host}:${target.port}` : err.message}`, { retryAfterS: 2 });
  }

  return {
    forward(req, target, sink, onGone, describe, onEnding, onSent) {
      const requestText = requestHead(req, target);
      return new Promise<ForwardOutcome>((resolve) => {
        let settled = false;
        let offGone: (() => void) | null = null;
        let offEnding: (() => void) | null = null;
        /** The wait for a stop's notice after the server dropped the request (ENDING_NOTICE_WAIT_MS). */
        let noticeWait: NodeJS.Timeout | null = null;
        const done = (o: ForwardOutcome) => {
          if (!settled) {
            settled = true;
            if (noticeWait) clearTimeout(noticeWait);
            offGone?.();
            offEnding?.();
            resolve(o);
          }
        };
        let current: Duplex | null = null;
        /** Ends the exchange under way for the server's going away (set while one is). */
        let endExchange: ((err: GatewayError) => void) | null = null;
        offGone = onGone(() => {
          current?.destroy();
          done({ status: 499, clientClosed: true });
        });
        if (settled) return;
        if (onEnding) {
          offEnding = onEnding((err) => {
            if (settled) return;
            if (endExchange) endExchange(err);
            else {
              // Still connecting: the connection is dropped when it comes (settled).
              sink.error(err);
              done({ status: err.status, clientClosed: false });
            }
          });
        }

        const pooled = take(target.key);
        if (pooled) exchange(pooled, true);
        else connectAndSend();

        function connectAndSend(): void {
          open(target).then(
            (link) => {
              if (settled) link.socket.destroy();
              else exchange(link, false);
            },
            (err: NodeJS.ErrnoException) => {
              if (settled) return;
              const refuse = () => {
                const e = failure(err, target, describe);
                sink.error(e);
                done({ status: e.status, clientClosed: false });
              };
              // Nothing listens where a running server was: it has most likely just ended (a crash), its notice on
              // the way. Nothing was sent; the notice, if it comes in time, is the answer (onEnding above).
              if (onEnding && connectRefused(err)) noticeWait = setTimeout(refuse, ENDING_NOTICE_WAIT_MS);
              else refuse();
            },
          );
        }

        function exchange(link: Link, reused: boolean): void {
          const socket = link.socket;
          current = socket;
          let head: Buffer | null = null;
          let answer: AnswerHead | null = null;
          let state = Body.Length;
          let left = 0;
          // A chunk's size line, read byte by byte as it arrives (a stream has one per token): its size so far,
          // how many hex digits, whether the digits ended (an extension or spaces follow), its length; and a
          // trailer line as text.
          let sizeSoFar = 0;
          let sizeDigits = 0;
          let sizeDone = false;
          let lineBytes = 0;
          let chunkLine = "";
          let keep = false;
          let gotAny = false;
          // The last four body bytes delivered (a stream's event ends with a blank line: "\n\n" or "\r\n\r\n");
          // before the first, as if after an event.
          let tail = 0x0d0a0d0a;
          // The silence deadline: the sweep reads lastByteAt (no timer re-armed per piece: a stream has thousands).
          const flight: InFlight = { lastByteAt: Date.now(), socket };
          inFlight.add(flight);
          sweeping();
          // The sink asked for a pause: the reader stops reading until it resumes.
          let paused = false;
          // The body pieces of the read being parsed (views of it), handed to the sink together when it is done.
          const pieces: Buffer[] = [];
          const flush = (always: boolean) => {
            if (pieces.length === 0 && !always) return;
            const more = sink.data(pieces, resume);
            pieces.length = 0;
            if (more) return;
            paused = true;
            socket.pause();
          };
          const cleanup = () => {
            inFlight.delete(flight);
            link.current = null;
            endExchange = null;
          };
          const finish = () => {
            state = Body.Done;
            cleanup();
            current = null;
            // The last read's pieces go with the end: a stream's last event and its closing chunk in one write.
            sink.end(pieces.length > 0 ? pieces : undefined);
            pieces.length = 0;
            if (keep) give(target.key, link);
            else socket.destroy();
            done({ status: answer!.status, clientClosed: false });
          };
          const deliver = (piece: Buffer) => {
            const n = piece.length;
            if (n === 0) return;
            pieces.push(piece);
            tail = n >= 4 ? piece.readUInt32BE(n - 4) : ((tail << (8 * n)) | piece.readUIntBE(0, n)) >>> 0;
          };
          const resume = () => {
            paused = false;
            socket.resume();
          };
          const onHead = (text: string) => {
            const parsed = parseAnswerHead(text);
            if (!parsed) throw new Error("the server's answer has a malformed head");
            if (parsed.status >= 100 && parsed.status < 200) return false;
            let length: number | null = null;
            let chunked = false;
            let close = false;
            let streamed = false;
            const headers: [string, string][] = [];
            for (const [name, value] of parsed.headers) {
              const n = name.toLowerCase();
              if (n === "content-length") length = Number(value);
              else if (n === "transfer-encoding") chunked = /(^|,)\s*chunked\s*$/i.test(value);
              else if (n === "connection") close = /(^|,)\s*close\s*(,|$)/i.test(value);
              else if (n === "content-type") streamed = value.startsWith("text/event-stream");
              if (!DROP_RESPONSE.has(n)) headers.push([name, value]);
            }
            const noBody = req.method === "HEAD" || parsed.status === 204 || parsed.status === 304;
            if (noBody) length = 0;
            else if (chunked) length = null;
            else if (length !== null && !(Number.isSafeInteger(length) && length >= 0)) throw new Error(`the server sent Content-Length ${length}`);
            // 501: the server lacks the feature (llama-server's "does not support embeddings. Start it with
            // --embeddings"); no retry can change that, and OpenAI's clients retry every 5xx unless told not to.
            if (parsed.status === 501 && !headers.some(([n]) => n.toLowerCase() === "x-should-retry")) headers.push(["x-should-retry", "false"]);
            answer = { status: parsed.status, headers, length, streamed };
            state = noBody || length !== null ? Body.Length : chunked ? Body.ChunkSize : Body.UntilClose;
            left = length ?? 0;
            keep = !close && !streamed && state !== Body.UntilClose;
            sink.head(answer);
            return true;
          };
          const onData = (chunk: Buffer) => {
            gotAny = true;
            flight.lastByteAt = Date.now();
            try {
              let buf = chunk;
              const headless = answer === null;
              if (answer === null) {
                // The read's bytes are lent: a head still arriving is kept as a copy.
                head = head ? Buffer.concat([head, buf]) : buf;
                for (;;) {
                  const end = head.indexOf("\r\n\r\n");
                  if (end === -1) {
                    if (head.length > MAX_HEAD_BYTES) throw new Error(`the server's answer head is longer than ${MAX_HEAD_BYTES} bytes`);
                    if (head.buffer === chunk.buffer) head = Buffer.from(head);
                    return;
                  }
                  const text = head.toString("latin1", 0, end);
                  const rest = head.subarray(end + 4);
                  if (onHead(text)) {
                    buf = rest;
                    head = null;
                    break;
                  }
                  head = rest; // an interim (1xx) answer: read the next head
                }
              }
              body(buf);
              // The read that held the head ends with a call to the sink, pieces or none (AnswerSink.data).
              if (state !== Body.Done) flush(headless);
            } catch (err) {
              pieces.length = 0;
              fail(err as Error);
            }
          };
          const body = (buf: Buffer) => {
            let i = 0;
            while (i < buf.length || state === Body.Length) {
              switch (state) {
                case Body.Length: {
                  const n = Math.min(left, buf.length - i);
                  if (n > 0) deliver(i === 0 && n === buf.length ? buf : buf.subarray(i, i + n));
                  i += n;
                  left -= n;
                  if (left === 0) {
                    if (i < buf.length) keep = false; // bytes past the answer: do not trust this connection again
                    finish();
                  }
                  return;
                }
                case Body.UntilClose:
                  deliver(i === 0 ? buf : buf.subarray(i));
                  return;
                case Body.ChunkSize: {
                  // chunk-size [chunk-ext] CRLF (RFC 9112 §7.1): hex digits, then anything up to the line feed.
                  for (; i < buf.length; i++) {
                    const c = buf[i]!;
                    if (c === 10) break;
                    if (++lineBytes > MAX_CHUNK_LINE_BYTES) throw new Error("the server's chunk header is too long");
                    const digit = sizeDone ? -1 : hexValue(c);
                    if (digit >= 0) {
                      sizeDigits++;
                      // Bounded by value, not digits: leading zeros are allowed (RFC 9112 §7.1).
                      sizeSoFar = sizeSoFar * 16 + digit;
                      if (sizeSoFar > MAX_CHUNK_SIZE) throw new Error("the server sent a chunk size too large to read");
                    } else if (sizeDigits > 0 && (c === 59 || c === 32 || c === 9 || c === 13)) sizeDone = true; // ; SP HTAB CR
                    else if (!sizeDone) throw new Error(`the server sent a bad chunk size (byte ${c} in its size line)`);
                  }
                  if (i === buf.length) return;
                  i++; // the line feed
                  if (sizeDigits === 0) throw new Error("the server sent a chunk size line without a size");
                  const size = sizeSoFar;
                  sizeSoFar = 0;
                  sizeDigits = 0;
                  sizeDone = false;
                  lineBytes = 0;
                  if (size === 0) state = Body.Trailers;
                  else {
                    state = Body.ChunkData;
                    left = size;
                  }
                  continue;
                }
                case Body.Trailers: {
                  const nl = buf.indexOf(10, i);
                  chunkLine += buf.toString("latin1", i, nl === -1 ? buf.length : nl + 1);
                  if (chunkLine.length > MAX_CHUNK_LINE_BYTES) throw new Error("the server's chunk trailer is too long");
                  if (nl === -1) return;
                  i = nl + 1;
                  const line = chunkLine.trimEnd();
                  chunkLine = "";
                  if (line === "") {
                    if (i < buf.length) keep = false;
                    finish();
                    return;
                  }
                  continue;
                }
                case Body.ChunkData: {
                  const n = Math.min(left, buf.length - i);
                  deliver(buf.subarray(i, i + n));
                  i += n;
                  left -= n;
                  if (left === 0) {
                    state = Body.ChunkDataEnd;
                    left = 2;
                  }
                  continue;
                }
                case Body.ChunkDataEnd: {
                  const n = Math.min(left, buf.length - i);
                  i += n;
                  left -= n;
                  if (left === 0) state = Body.ChunkSize;
                  continue;
                }
                case Body.Done:
                  return;
              }
            }
          };
          const fail = (err: NodeJS.ErrnoException) => {
            if (state === Body.Done) return;
            cleanup();
            if (settled) return;
            current = null;
            socket.destroy();
            // A pooled connection the server had closed: nothing of the answer came, so send it again on a new one.
            if (reused && !gotAny && !sink.started) {
              connectAndSend();
              return;
            }
            // Dropped by the server (not a silence deadline): it may be stopping, its notice on the way. The client
            // is told why if the notice comes in time and its answer can still say it; else as below.
            if (onEnding && (err.code === "ECONNRESET" || err.code === "EPIPE") && (!sink.started || eventFits())) {
              endExchange = (notice) => {
                endExchange = null;
                tellEnding(notice);
              };
              noticeWait = setTimeout(() => {
                noticeWait = null;
                endExchange = null;
                failed(err);
              }, ENDING_NOTICE_WAIT_MS);
              return;
            }
            failed(err);
          };
          /** The server failed the request: the answer is cut if it began, else the gateway's error is the answer. */
          const failed = (err: NodeJS.ErrnoException) => {
            if (sink.started) {
              sink.cut();
              done({ status: answer?.status ?? 502, clientClosed: false });
              return;
            }
            const e = failure(err, target, describe);
            sink.error(e);
            done({ status: e.status, clientClosed: false });
          };
          /**
           * The model's server is going away: its error as the answer when none began, as a last event when one
           * fits, else a cut. The figures count it as that error, not the 200 a stream's head said.
           */
          const tellEnding = (err: GatewayError) => {
            if (!sink.started) sink.error(err);
            else if (eventFits()) sink.end([errorEvent(err)]);
            else sink.cut();
            done({ status: err.status, clientClosed: false });
          };
          const onEnd = () => {
            if (state === Body.UntilClose) {
              cleanup();
              current = null;
              socket.destroy();
              sink.end();
              done({ status: answer!.status, clientClosed: false });
            } else fail(Object.assign(new Error("the server closed the connection before the answer ended"), { code: "ECONNRESET" }));
          };
          /** A stream of unknown length (chunked, as llama-server streams) between two events: one more event fits. */
          const eventFits = () => answer !== null && answer.streamed && answer.length === null && ((tail & 0xffff) === 0x0a0a || tail === 0x0d0a0d0a);
          endExchange = (err) => {
            if (state === Body.Done) return;
            state = Body.Done;
            cleanup();
            current = null;
            socket.destroy();
            pieces.length = 0;
            tellEnding(err);
          };
          link.current = {
            read(chunk) {
              onData(chunk);
              return !paused;
            },
            error: fail,
            end: onEnd,
          };
          if (socket.isPaused()) socket.resume();
          // The request reaches the model's server (again, on a new connection, when a pooled one was found closed).
          onSent?.();
          // Head and body in one system call.
          writeJoined(socket, requestText, req.body);
        }
      });
    },
    close() {
      closed = true;
      if (sweeper) clearInterval(sweeper);
      sweeper = null;
      for (const pool of pools.values()) for (const link of pool.splice(0)) link.socket.destroy();
      pools.clear();
    },
  };
}
