/**
 * /api/metrics's text over a real fleet: the real llama-server with the
 * tiny model, the gateway in front of it (official openai client), the
 * app's metrics reading the server through the gateway's upstream.
 *
 * After N completions through the gateway, the text passes Debian's
 * `promtool check metrics`, and its counters equal llama-server's own
 * (read from its /metrics with its key) and the gateway's counts.
 *
 * Cached prompt tokens: llama-server's prompt_tokens_total counts only the
 * prompt tokens it processed, prompt_tokens_cached_total those reused from
 * the slot's cache; the gateway's prompt tokens count both (OpenAI's
 * usage.prompt_tokens). So gateway prompt = server prompt + server cached.
 */
import { spawnSync } from "node:child_process";
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Model } from "~/generated/prisma/client";
import { gatewayFixture, GRAMMAR, serverAuth, type GatewayFixture } from "~/server/gateway/testing/gateway-fixture";
import { testLogger } from "~/server/services/fleet/testing/db";
import { waitFor } from "~/server/services/fleet/testing/fixture";
import { createAppMetrics, type AppMetrics } from "./app-metrics";
import { parsePrometheusText } from "./llama-text";

const N_PLAIN = 4;
/** Moves the metrics' clock on (the minute roll-up). */
let clockOffsetMs = 0;
const N_STREAM = 2;

function chat(model: string, content: string, extra: Record<string, unknown> = {}): ChatCompletionCreateParamsNonStreaming {
  return { model, messages: [{ role: "user", content }], max_tokens: 6, grammar: GRAMMAR, ...extra } as unknown as ChatCompletionCreateParamsNonStreaming;
}

/** The sum of every sample of `name` whose labels include all of `labels`. */
function sum(samples: Map<string, number>, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const [key, v] of samples) {
    const brace = key.indexOf("{");
    const n = brace === -1 ? key : key.slice(0, brace);
    if (n !== name) continue;
    if (Object.entries(labels).every(([k, val]) => key.includes(`${k}="${val}"`))) total += v;
  }
  return total;
}

describe("/api/metrics over a real llama-server and the gateway", () => {
  let g: GatewayFixture;
  let metrics: AppMetrics;
  let alpha: Model;

  beforeAll(async () => {
    g = await gatewayFixture({
      metrics: (f) => {
        metrics = createAppMetrics({ db: f.t.db, fleet: f.fleet, events: f.events, log: testLogger(), intervalMs: 0, now: () => Date.now() + clockOffsetMs });
        return metrics.gateway;
      },
    });
    alpha = await g.addModel("alpha");
    const r = await g.f.fleet.start(alpha.id, { wait: true });
    expect(r.state, r.error ?? "").toBe("ready");
  });
  afterAll(async () => {
    await metrics?.close();
    await g?.dispose();
  });

  it("after N completions, passes promtool and its counters equal llama-server's and the gateway's", async () => {
    await metrics.tick();
    // The same prompt twice: the second reuses the slot's cached prompt tokens.
    for (let i = 0; i < N_PLAIN; i++) await g.client.chat.completions.create(chat("alpha", i < 2 ? "the same prompt" : `prompt ${i}`));
    for (let i = 0; i < N_STREAM; i++) {
      const stream = await g.client.chat.completions.create({ ...chat("alpha", `streamed ${i}`), stream: true } as never);
      for await (const _ of stream as unknown as AsyncIterable<unknown>) void _;
    }
    // Refused before a model is known: counted with empty model and key labels.
    const missing = await g.client.chat.completions.create(chat("no-such-model", "x")).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    await metrics.tick();

    const { body, contentType } = await metrics.text();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);

    // A parser no one here wrote: Debian's promtool.
    const check = spawnSync("promtool", ["check", "metrics"], { input: body, encoding: "utf8", timeout: 30_000 });
    expect(check.error).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe("");
    expect(check.status).toBe(0);

    const ours = parsePrometheusText(body);
    const own = parsePrometheusText(await (await fetch(`http://127.0.0.1:${alpha.port}/metrics`, { headers: serverAuth(alpha) })).text());
    const llama = (n: string) => own.get(`llamacpp:${n}`)!;
    const m = { model: "alpha", host: "local" };

    // The server's counters, as llama-server says them.
    expect(sum(ours, "synapse_server_generated_tokens_total", m)).toBe(llama("tokens_predicted_total"));
    expect(sum(ours, "synapse_server_prompt_tokens_total", m)).toBe(llama("prompt_tokens_total"));
    expect(sum(ours, "synapse_server_prompt_cached_tokens_total", m)).toBe(llama("prompt_tokens_cached_total"));
    expect(llama("prompt_tokens_cached_total")).toBeGreaterThan(0);
    expect(sum(ours, "synapse_server_ready", m)).toBe(1);
    expect(sum(ours, "synapse_server_up", m)).toBe(1);
    expect(sum(ours, "synapse_server_slots", m)).toBe(1);

    // The gateway's counts: every request, and the tokens llama-server generated and was given.
    expect(sum(ours, "synapse_gateway_requests_total", { ...m, status: "200" })).toBe(N_PLAIN + N_STREAM);
    expect(sum(ours, "synapse_gateway_requests_total", { model: "", status: "404" })).toBe(1);
    expect(sum(ours, "synapse_gateway_request_errors_total", { status: "404" })).toBe(1);
    expect(sum(ours, "synapse_gateway_request_duration_seconds_count", m)).toBe(N_PLAIN + N_STREAM);
    expect(sum(ours, "synapse_gateway_time_to_first_token_seconds_count", m)).toBe(N_PLAIN + N_STREAM);
    expect(sum(ours, "synapse_gateway_completion_tokens_total", m)).toBe(llama("tokens_predicted_total"));
    expect(sum(ours, "synapse_gateway_prompt_tokens_total", m)).toBe(llama("prompt_tokens_total") + llama("prompt_tokens_cached_total"));
    expect(sum(ours, "synapse_gateway_prompt_cached_tokens_total", m)).toBe(llama("prompt_tokens_cached_total"));

    // The host's figures (this machine, the "local" host).
    expect(sum(ours, "synapse_host_memory_total_bytes", { host: "local" })).toBeGreaterThan(0);

    // The last point: generated tokens/s from the counters, latency of the requests in it.
    const last = metrics.history(alpha.id).at(-1)!;
    expect(last.generatedTokensPerS).toBeGreaterThan(0);
    expect(last.latencyMs).toBeGreaterThan(0);
    expect(last.memoryBytes).toBeGreaterThan(0);
  });

  it("reads a sleeping server without waking it: /props and /metrics, not /slots", async () => {
    const sleepy = await g.addModel("sleepy", { extraFlags: JSON.stringify([{ flag: "--sleep-idle-seconds", value: "1" }]) });
    const r = await g.f.fleet.start(sleepy.id, { wait: true });
    expect(r.state, r.error ?? "").toBe("ready");
    const props = async () => (await (await fetch(`http://127.0.0.1:${sleepy.port}/props`, { headers: serverAuth(sleepy) })).json()) as { is_sleeping?: boolean };
    await waitFor("llama-server puts itself to sleep", async () => (await props()).is_sleeping === true, 20_000, 200);
    await metrics.tick();
    await metrics.tick();
    const ours = parsePrometheusText((await metrics.text()).body);
    const m = { model: "sleepy", host: "local" };
    expect(sum(ours, "synapse_server_sleeping", m)).toBe(1);
    expect(sum(ours, "synapse_server_up", m)).toBe(1);
    expect([...ours.keys()].some((k) => k.startsWith("synapse_server_slots{") && k.includes('model="sleepy"'))).toBe(false);
    // Still asleep after the reads (a /slots read would have woken it).
    expect((await props()).is_sleeping).toBe(true);
    await g.f.fleet.stop(sleepy.id);
  });

  it("writes each minute of points to SQLite as one row per model", async () => {
    // The points so far lie in this minute or the one before (a tick may straddle a minute's change).
    await metrics.rollUp();
    clockOffsetMs = 60_000;
    await metrics.rollUp();
    const rows = await metrics.minutes(alpha.id, 0);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    expect(rows.length).toBeLessThanOrEqual(2);
    expect(Math.max(...rows.map((r) => r.generatedTokensPerS))).toBeGreaterThan(0);
    expect(rows.every((r) => r.t % 60_000 === 0)).toBe(true);
  });
});
