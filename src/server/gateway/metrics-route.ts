/**
 * GET /api/metrics on the front path: the same answer as Next's route
 * (src/app/api/metrics/route.ts), from the same registry (the runtime's,
 * on globalThis), checked by the same guard (guard.ts `checkRequest`, as
 * src/proxy.ts does for Next), without Next's per-request cost: a route
 * handler adds ~18 ms p50 under load on this machine (front.ts), as much as
 * the whole target for a scrape (bench/metrics.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { checkRequest, type GuardSettings } from "~/server/http/guard";
import { headerReader } from "./access";
import { pathOf } from "./routes";

export const METRICS_PATH = "/api/metrics";

/** What the route needs of the runtime: its metrics' text. */
export interface MetricsSource {
  text(): Promise<{ body: string; contentType: string }>;
}

/** True for a request the front path answers here (GET or HEAD /api/metrics; other methods go on to Next, which answers 405). */
export function isMetricsRequest(req: IncomingMessage): boolean {
  return req.url !== undefined && pathOf(req.url) === METRICS_PATH && (req.method === "GET" || req.method === "HEAD");
}

function sendJsonError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
  res.end(body);
}

export async function serveMetrics(req: IncomingMessage, res: ServerResponse, settings: GuardSettings, source: () => Promise<MetricsSource>): Promise<void> {
  const verdict = checkRequest({ method: req.method ?? "GET", pathname: METRICS_PATH, headers: headerReader(req.headers) }, settings);
  if (!verdict.ok) return sendJsonError(res, verdict.status, verdict.code, verdict.message);
  try {
    const { body, contentType } = await (await source()).text();
    res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body), "cache-control": "no-store" });
    res.end(req.method === "HEAD" ? undefined : body);
  } catch (err) {
    sendJsonError(res, 503, "UNAVAILABLE", `metrics are not available: ${err instanceof Error ? err.message : String(err)}`);
  }
}
