/**
 * Forwards one request to a llama-server and its answer back, with Node's
 * own http client over a keep-alive agent (no new TCP connection per
 * request; measured in bench/gateway.ts against direct and nginx).
 *
 * - The body goes up exactly as the client sent it (the gateway only read
 *   `model` from it); the answer comes back as it arrives: each chunk of a
 *   streamed (SSE) answer is written to the client when llama-server writes
 *   it (Nagle off both ways), never collected.
 * - A client that goes away (socket closed before the answer ended) destroys
 *   the upstream request, which closes that connection; llama-server sees
 *   the close and cancels the task, freeing its slot.
 * - Hop-by-hop headers are dropped both ways; the client's credentials are
 *   for the gateway and are not sent on.
 * - Every wait has a deadline: connecting, and silence from the server
 *   (no byte for `idleTimeoutMs`), after which the answer is 504 (or the
 *   stream is cut).
 * - A connection that carried a streamed answer is not used again:
 *   llama-server closes it after the stream (its headers say keep-alive
 *   all the same), and the agent would hand it to the next request, which
 *   met the reset. A request that waited in the agent's queue got it
 *   directly (its `reusedSocket` false, so never retried: a 502), and every
 *   other one paid a failed try and a resend.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { GatewayError, sendError } from "./openai-error";

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus what is only for the gateway. */
const DROP_REQUEST = new Set(["host", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "authorization", "cookie", "content-length", "expect"]);
const DROP_RESPONSE = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods", "access-control-allow-headers"]);

/** How long an idle kept-alive socket to a llama-server is kept (ms). */
export const FREE_SOCKET_TIMEOUT_MS = 4000;

export interface UpstreamOptions {
  /** Sockets kept open per llama-server. */
  maxSockets?: number;
  /** Silence from the server before the request is given up (ms). Default 10 minutes (a long prompt on a big model). */
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
}

export interface ForwardTarget {
  host: string;
  port: number;
  /** Sent as `Authorization: Bearer` to the server (its --api-key / LLAMA_API_KEY), when set. */
  apiKey?: string | null;
  /** Connections from this agent instead of the upstream's own TCP one (ssh-upstream.ts: channels on an ssh host's connection). */
  agent?: http.Agent;
}

export interface ForwardOutcome {
  /** The upstream status, or the status the gateway answered with. */
  status: number;
  /** True when the client went away before the answer ended. */
  clientClosed: boolean;
}

/** A small answer read whole (`read`). */
export interface ReadAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Upstream {
  /** `onData` sees each chunk of the answer as it goes to the client (the gateway's figures: first byte, tokens). */
  forward(req: IncomingMessage, res: ServerResponse, target: ForwardTarget, path: string, body: Buffer | null, describe: string, onData?: (chunk: Buffer) => void): Promise<ForwardOutcome>;
  /**
   * GETs `path` of the model's server on the same connections as `forward`
   * (the app's metrics reader: /metrics, /props, /slots). Rejects when no
   * answer ends within `timeoutMs` or it is longer than `maxBytes`.
   */
  read(target: ForwardTarget, path: string, options: { timeoutMs: number; maxBytes: number }): Promise<ReadAnswer>;
  close(): void;
}

function requestHeaders(src: IncomingHttpHeaders, body: Buffer | null, apiKey: string | null | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(src)) if (v !== undefined && !DROP_REQUEST.has(k)) out[k] = v;
  if (body !== null) out["content-length"] = body.length;
  if (apiKey) out.authorization = `Bearer ${apiKey}`;
  return out;
}

function responseHeaders(src: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(src)) if (v !== undefined && !DROP_RESPONSE.has(k)) out[k] = v;
  return out;
}

export function createUpstream(options: UpstreamOptions = {}): Upstream {
  const idleTimeoutMs = options.idleTimeoutMs ?? 10 * 60_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  // `timeout` is what an idle kept-alive socket may wait: below llama-server's own keep-alive
  // timeout (cpp-httplib's 5 s), so the agent drops a socket before the server does. A request
  // sets its own, longer timeout while it runs.
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 64, maxFreeSockets: 16, scheduling: "lifo", timeout: FREE_SOCKET_TIMEOUT_MS });

  return {
    forward(req, res, target, path, body, describe, onData) {
      return new Promise<ForwardOutcome>((resolve) => {
        let settled = false;
        const done = (o: ForwardOutcome) => {
          if (!settled) {
            settled = true;
            resolve(o);
          }
        };
        attempt(true);
        function attempt(mayRetry: boolean): void {
          const up = http.request({ host: target.host, port: target.port, method: req.method, path, headers: requestHeaders(req.headers, body, target.apiKey), agent: target.agent ?? agent });
          let connectTimer: NodeJS.Timeout | null = setTimeout(() => up.destroy(new Error(`no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);
          const connected = () => {
            if (connectTimer) clearTimeout(connectTimer);
            connectTimer = null;
          };
          up.on("socket", (s: Socket) => {
            s.setNoDelay(true);
            if (!s.connecting) connected();
            else s.once("connect", connected);
          });
          up.setTimeout(idleTimeoutMs, () => up.destroy(new Error(`no answer for ${Math.round(idleTimeoutMs / 1000)} s`)));

          // The client went away: stop the work upstream (destroying the request closes its connection).
          const onClientClose = () => {
            if (!res.writableFinished) {
              up.destroy();
              done({ status: res.statusCode, clientClosed: true });
            }
          };
          res.once("close", onClientClose);

          up.on("response", (ures) => {
            connected();
            res.writeHead(ures.statusCode ?? 502, responseHeaders(ures.headers));
            // A stream: send the status line and headers now, so its client sees the answer begin before
            // the first token. Otherwise they go out with the body, in one write.
            const streamed = String(ures.headers["content-type"] ?? "").startsWith("text/event-stream");
            if (streamed) res.flushHeaders();
            // Taken now: by 'end' the answer is detached from it.
            const socket = ures.socket;
            ures.on("data", (chunk: Buffer) => {
              onData?.(chunk);
              if (!res.write(chunk)) {
                ures.pause();
                res.once("drain", () => ures.resume());
              }
            });
            ures.once("end", () => {
              // Before the agent takes the socket back (Node frees it on the next tick, after 'end'
              // listeners): the server closes it, so no request may be given it.
              if (streamed) socket.destroy();
              res.end();
              done({ status: ures.statusCode ?? 502, clientClosed: false });
            });
            ures.once("error", () => {
              // Cut mid-answer: the client must see a broken answer, not a complete-looking one.
              res.destroy();
              done({ status: ures.statusCode ?? 502, clientClosed: false });
            });
          });
          up.once("error", (err: NodeJS.ErrnoException) => {
            connected();
            if (settled) return;
            // A kept-alive socket the server closed just as it was reused: nothing reached the server,
            // so the same request goes again, once, on a new connection (the body is in hand).
            if (mayRetry && up.reusedSocket && !res.headersSent && (err.code === "ECONNRESET" || err.code === "EPIPE")) {
              res.off("close", onClientClose);
              attempt(false);
              return;
            }
            if (res.headersSent) {
              res.destroy();
              done({ status: res.statusCode, clientClosed: false });
              return;
            }
            const timeout = /no answer|no connection/.test(err.message);
            const status = timeout ? 504 : 502;
            const code = err.code === "ECONNREFUSED" ? "upstream_refused" : timeout ? "upstream_timeout" : "upstream_error";
            sendError(res, new GatewayError(status, "server_error", code, `${describe}: ${err.code === "ECONNREFUSED" ? `nothing listens on ${target.host}:${target.port}` : err.message}`, { retryAfterS: 2 }));
            done({ status, clientClosed: false });
          });
          up.end(body ?? undefined);
        }
      });
    },
    read(target, path, { timeoutMs, maxBytes }) {
      return new Promise<ReadAnswer>((resolve, reject) => {
        const up = http.request({ host: target.host, port: target.port, method: "GET", path, headers: requestHeaders({}, null, target.apiKey), agent: target.agent ?? agent });
        // Settled once, by whichever comes first. Once the answer's headers are in, a destroy (the deadline,
        // the size bound) or a connection that closes mid-body is reported on the answer, not the request,
        // and the answer never ends: without these, the read would wait for ever.
        let why: Error | null = null;
        const fail = (err: Error) => {
          clearTimeout(timer);
          reject(why ?? err);
        };
        const timer = setTimeout(() => up.destroy((why = new Error(`no answer from ${target.host}:${target.port}${path} within ${timeoutMs} ms`))), timeoutMs);
        up.once("error", fail);
        up.once("close", () => fail(new Error(`${target.host}:${target.port}${path}: the connection closed before the answer ended`)));
        up.on("response", (ures) => {
          const chunks: Buffer[] = [];
          let size = 0;
          ures.on("data", (c: Buffer) => {
            size += c.length;
            if (size > maxBytes) up.destroy((why = new Error(`${path} answered more than ${maxBytes} bytes`)));
            else chunks.push(c);
          });
          ures.once("end", () => {
            clearTimeout(timer);
            resolve({ status: ures.statusCode ?? 0, headers: ures.headers, body: Buffer.concat(chunks).toString("utf8") });
          });
          ures.once("error", fail);
        });
        up.end();
      });
    },
    close() {
      agent.destroy();
    },
  };
}
