/**
 * One GET /health against a server on the host's loopback. llama-server
 * answers 503 while loading and 200 when ready; anything else (refused,
 * timeout, other codes) is reported as such.
 */
import net from "node:net";

export type HealthResult =
  | { kind: "ok" }
  | { kind: "loading" }
  | { kind: "http"; status: number }
  | { kind: "refused" }
  | { kind: "timeout"; ms: number }
  | { kind: "error"; message: string };

/** A bind on every address of the machine (IPv4 or IPv6). */
export function isWildcardBind(bindAddress: string): boolean {
  return bindAddress === "0.0.0.0" || bindAddress === "::" || bindAddress === "[::]";
}

/** Wildcard binds are probed on loopback; a specific address is probed where it listens. */
export function probeHost(bindAddress: string): string {
  if (!isWildcardBind(bindAddress)) return bindAddress;
  return bindAddress === "0.0.0.0" ? "127.0.0.1" : "::1";
}

/** The longest status line read before the reply counts as not HTTP. */
const MAX_STATUS_LINE = 1024;

/**
 * The probe speaks just enough HTTP/1.1 for this: one request on a fresh
 * connection (so a hung keep-alive socket cannot hide a dead server), and the
 * status line of the reply; the rest is not read. Node's HTTP client costs
 * about twice the CPU per request (measured here: ~0.8 against ~0.4 ms), and
 * the agent probes every loading server while they share the machine.
 */
export function probeHealth(host: string, port: number, timeoutMs: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    let settled = false;
    let head = "";
    const socket = net.connect({ host, port });
    const done = (r: HealthResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ kind: "timeout", ms: timeoutMs }), timeoutMs);
    socket.setNoDelay(true);
    socket.once("connect", () => {
      const hostHeader = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
      socket.write(`GET /health HTTP/1.1\r\nHost: ${hostHeader}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`);
    });
    socket.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      if (!head.includes("\r\n") && head.length < MAX_STATUS_LINE) return;
      const m = /^HTTP\/1\.[01] (\d{3})[ \r]/.exec(head);
      if (!m) return done({ kind: "error", message: `not an HTTP reply: ${JSON.stringify(head.slice(0, 40))}` });
      const status = Number(m[1]);
      done(status === 200 ? { kind: "ok" } : status === 503 ? { kind: "loading" } : { kind: "http", status });
    });
    socket.once("end", () => done({ kind: "error", message: "the connection closed before a reply" }));
    socket.once("error", (err: NodeJS.ErrnoException) => done(err.code === "ECONNREFUSED" ? { kind: "refused" } : { kind: "error", message: err.message }));
  });
}

/**
 * Whether a log line says the server serves. llama-server writes "model
 * loaded" right after its state turns ready, then "listening on" (older
 * releases: "server is listening on", "all slots are idle"; not their "HTTP
 * server is listening, hostname: …", printed before the model loads). The
 * supervisor probes at once on such a line; a release that words them
 * otherwise, or a server started with its log turned down, is still found by
 * the timed probes, only later (at most 250 ms).
 */
export function isReadyHint(line: string): boolean {
  return /model loaded|listening on|all slots are idle/i.test(line);
}

/**
 * Whether a log line says llama-server is exiting: its `clean_up`, run when
 * a first SIGINT/SIGTERM ends its task loop, logs "cleaning up before exit"
 * (tools/server/server.cpp). It then waits for the clients of its open
 * requests before it exits (terminate.ts says why).
 */
export function isExitingHint(line: string): boolean {
  return /cleaning up before exit/.test(line);
}

export function describeHealth(r: HealthResult): string {
  switch (r.kind) {
    case "ok": return "healthy";
    case "loading": return "loading (HTTP 503)";
    case "http": return `health check answered HTTP ${r.status}`;
    case "refused": return "health check: connection refused";
    case "timeout": return `health check timed out after ${r.ms} ms`;
    case "error": return `health check failed: ${r.message}`;
  }
}
