/**
 * GET /api/metrics — the fleet's figures in the Prometheus text format
 * (prom-client): each model server's llama.cpp counters and rates, the
 * gateway's requests, errors, latency histograms and tokens, the hosts'
 * memory and load. Names and labels: README "Metrics". Guarded like the
 * rest of the API (src/proxy.ts: bearer token beyond loopback).
 */
import { errorResponse } from "~/server/http/rest";
import { getRuntime } from "~/server/runtime";

export const dynamic = "force-dynamic";

export async function GET(): Promise<Response> {
  try {
    const { body, contentType } = await (await getRuntime()).metrics.text();
    return new Response(body, { status: 200, headers: { "content-type": contentType, "cache-control": "no-store" } });
  } catch (err) {
    return errorResponse(err);
  }
}
