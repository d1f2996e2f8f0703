/**
 * One GET /health against a server on the host's loopback. llama-server
 * answers 503 while loading and 200 when ready; anything else (refused,
 * timeout, other codes) is reported as such.
 */
import http from "node:http";

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

export function probeHealth(host: string, port: number, timeoutMs: number): Promise<HealthResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: HealthResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(r);
    };
    // agent: false: a fresh connection each probe, so a hung keep-alive socket cannot hide a dead server.
    const req = http.get({ host, port, path: "/health", agent: false, headers: { connection: "close" } }, (res) => {
      res.resume();
      const s = res.statusCode ?? 0;
      done(s === 200 ? { kind: "ok" } : s === 503 ? { kind: "loading" } : { kind: "http", status: s });
    });
    const timer = setTimeout(() => done({ kind: "timeout", ms: timeoutMs }), timeoutMs);
    req.on("error", (err: NodeJS.ErrnoException) => done(err.code === "ECONNREFUSED" ? { kind: "refused" } : { kind: "error", message: err.message }));
  });
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
