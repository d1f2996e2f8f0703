/**
 * Reads a llama-server's small answers (/metrics, /props, /slots) for the
 * app's metrics reader, with Node's own http client over a keep-alive agent
 * (no new TCP connection per read; for an ssh host, ssh-upstream.ts's agent
 * whose connections are channels on the host's ssh connection). Every read
 * has a deadline and a size bound. The gateway's requests go through
 * raw-upstream.ts instead (its own HTTP/1.1 relay; front.ts says why).
 */
import http, { type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus what is only for the gateway. */
const DROP_REQUEST = new Set(["host", "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "authorization", "cookie", "content-length", "expect"]);

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
  /**
   * GETs `path` of the model's server on kept-alive connections
   * (the app's metrics reader: /metrics, /props, /slots). Rejects when no
   * answer ends within `timeoutMs` or it is longer than `maxBytes`, or when
   * `signal` aborts (the connection is closed at once).
   */
  read(target: ForwardTarget, path: string, options: { timeoutMs: number; maxBytes: number; signal?: AbortSignal }): Promise<ReadAnswer>;
  close(): void;
}

function requestHeaders(src: IncomingHttpHeaders, body: Buffer | null, apiKey: string | null | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(src)) if (v !== undefined && !DROP_REQUEST.has(k)) out[k] = v;
  if (body !== null) out["content-length"] = body.length;
  if (apiKey) out.authorization = `Bearer ${apiKey}`;
  return out;
}

export function createUpstream(options: UpstreamOptions = {}): Upstream {
  // `timeout` is what an idle kept-alive socket may wait: below llama-server's own keep-alive
  // timeout (cpp-httplib's 5 s), so the agent drops a socket before the server does. A request
  // sets its own, longer timeout while it runs.
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 64, maxFreeSockets: 16, scheduling: "lifo", timeout: FREE_SOCKET_TIMEOUT_MS });

  return {
    read(target, path, { timeoutMs, maxBytes, signal }) {
      return new Promise<ReadAnswer>((resolve, reject) => {
        if (signal?.aborted) return reject(new Error(`${target.host}:${target.port}${path}: read abandoned before it began`));
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
        const onAbort = () => up.destroy((why ??= new Error(`${target.host}:${target.port}${path}: read abandoned`)));
        signal?.addEventListener("abort", onAbort, { once: true });
        up.once("close", () => signal?.removeEventListener("abort", onAbort));
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
