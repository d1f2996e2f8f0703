/**
 * /api/metrics describes the registry as it is: after a model is deleted,
 * renamed or moved to another host, and after a host is deleted, no series
 * carries the old name or host (the gateway's counters, histograms and queue
 * gauges, the server figures, the host figures), while the other models'
 * series stay. Over a real fleet: the real llama-server with the tiny model,
 * the gateway in front of it (official openai client), the app's metrics;
 * and with the gateway in its worker thread, as the app runs it (its figures
 * and queues reach the main thread's metrics as messages).
 */
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Model } from "~/generated/prisma/client";
import { gatewayFixture, GRAMMAR, type GatewayFixture } from "~/server/gateway/testing/gateway-fixture";
import { startGatewayWorker, type GatewayWorker } from "~/server/gateway/testing/gateway-worker";
import { deleteHost, upsertHost } from "~/server/services/registry/hosts";
import { deleteModel, updateModel } from "~/server/services/registry/models";
import { testLogger } from "~/server/services/fleet/testing/db";
import { waitFor } from "~/server/services/fleet/testing/fixture";
import { createAppMetrics, type AppMetrics } from "./app-metrics";
import { parsePrometheusText } from "./llama-text";

const chat = (model: string): ChatCompletionCreateParamsNonStreaming => ({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 4, grammar: GRAMMAR }) as unknown as ChatCompletionCreateParamsNonStreaming;

/** The series (name and labels, as exposed) whose label `label` is `value`. */
function seriesWith(samples: Map<string, number>, label: string, value: string): string[] {
  const needle = `${label}=${JSON.stringify(value)}`;
  return [...samples.keys()].filter((k) => k.includes(`{${needle}`) || k.includes(`,${needle}`));
}

/** The families (metric names, without _bucket/_sum/_count) of some series. */
const families = (series: string[]) => new Set(series.map((k) => k.slice(0, k.indexOf("{")).replace(/_(bucket|sum|count)$/, "")));

describe("series of models and hosts the registry no longer has", () => {
  let g: GatewayFixture;
  let metrics: AppMetrics;
  let keep: Model;

  /** What a scrape after the collector's next read shows. */
  async function scrape(): Promise<Map<string, number>> {
    await metrics.tick();
    return parsePrometheusText((await metrics.text()).body);
  }

  /** Starts a model, sends it a completion through the gateway; its series are then in every gateway family. */
  async function used(m: Model): Promise<void> {
    const r = await g.f.fleet.start(m.id, { wait: true });
    expect(r.state, r.error ?? "").toBe("ready");
    await g.client.chat.completions.create(chat(m.name));
  }

  /** The series of `keep`, which every case leaves in place. */
  function expectKeepSeries(samples: Map<string, number>): void {
    const f = families(seriesWith(samples, "model", "keep"));
    for (const name of ["synapse_gateway_requests_total", "synapse_gateway_request_duration_seconds", "synapse_gateway_completion_tokens_total", "synapse_gateway_requests_running", "synapse_server_ready", "synapse_server_generated_tokens_total"]) {
      expect(f, name).toContain(name);
    }
    expect(samples.get('synapse_gateway_requests_total{model="keep",host="local",key="open",status="200"}')).toBeGreaterThanOrEqual(1);
  }

  beforeAll(async () => {
    g = await gatewayFixture({
      gateway: { idleSweepMs: 50 },
      metrics: (f) => {
        metrics = createAppMetrics({ db: f.t.db, fleet: f.fleet, events: f.events, log: testLogger(), intervalMs: 0 });
        return metrics.gateway;
      },
    });
    keep = await g.addModel("keep");
    await used(keep);
  });
  afterAll(async () => {
    await metrics?.close();
    await g?.dispose();
  });

  it("a deleted model's series are gone from every family; the other models' stay", async () => {
    const gone = await g.addModel("gone");
    await used(gone);
    const before = await scrape();
    // Every kind of per-model series is there before: gateway counters, histograms, queue gauges, server figures.
    const had = families(seriesWith(before, "model", "gone"));
    for (const name of ["synapse_gateway_requests_total", "synapse_gateway_time_to_first_token_seconds", "synapse_gateway_prompt_tokens_total", "synapse_gateway_requests_queued", "synapse_server_ready", "synapse_server_up"]) {
      expect(had, name).toContain(name);
    }

    await g.f.fleet.stop(gone.id);
    await deleteModel(g.f.t.db, { id: gone.id });
    // The gateway drops its queue's entry at its next look at the registry (its idle sweep).
    const after = await waitFor("the deleted model's series to go", async () => {
      const s = await scrape();
      return seriesWith(s, "model", "gone").length === 0 ? s : null;
    }, 10_000, 50).catch(async () => scrape());
    expect(seriesWith(after, "model", "gone")).toEqual([]);
    expectKeepSeries(after);
  });

  it("a renamed model's series under its old name are gone; its new name counts from its first request", async () => {
    const m = await g.addModel("old-name");
    await used(m);
    expect(seriesWith(await scrape(), "model", "old-name").length).toBeGreaterThan(0);

    await g.f.fleet.stop(m.id);
    await updateModel(g.f.t.db, { id: m.id, name: "new-name" }, { appPort: 1 });
    const renamed = await waitFor("the old name's series to go", async () => {
      const s = await scrape();
      return seriesWith(s, "model", "old-name").length === 0 ? s : null;
    }, 10_000, 50).catch(async () => scrape());
    expect(seriesWith(renamed, "model", "old-name")).toEqual([]);
    expectKeepSeries(renamed);

    expect((await g.f.fleet.start(m.id, { wait: true })).state).toBe("ready");
    await new OpenAI({ baseURL: `${g.url}/v1`, apiKey: "loopback", maxRetries: 0 }).chat.completions.create(chat("new-name"));
    const used2 = await scrape();
    expect(used2.get('synapse_gateway_requests_total{model="new-name",host="local",key="open",status="200"}')).toBe(1);
    expect(seriesWith(used2, "model", "old-name")).toEqual([]);
    await g.f.fleet.stop(m.id);
  });

  it("a model moved to another host loses its series under the old host; a deleted host's series are gone", async () => {
    const m = await g.addModel("mover");
    await used(m);
    const other = await upsertHost(g.f.t.db, { name: "other", linkKind: "local" });
    const moverOnLocal = (s: Map<string, number>) => seriesWith(s, "model", "mover").filter((k) => k.includes('host="local"'));
    expect(moverOnLocal(await scrape()).length).toBeGreaterThan(0);
    expect(seriesWith(await scrape(), "host", "other").length).toBeGreaterThan(0);

    await g.f.fleet.stop(m.id);
    await updateModel(g.f.t.db, { id: m.id, hostId: other.id }, { appPort: 1 });
    const moved = await waitFor("the old host's series of the moved model to go", async () => {
      const s = await scrape();
      return moverOnLocal(s).length === 0 ? s : null;
    }, 10_000, 50).catch(async () => scrape());
    expect(moverOnLocal(moved)).toEqual([]);
    expectKeepSeries(moved);

    await deleteModel(g.f.t.db, { id: m.id });
    await deleteHost(g.f.t.db, { id: other.id });
    const hostGone = await waitFor("the deleted host's series to go", async () => {
      const s = await scrape();
      return seriesWith(s, "host", "other").length === 0 ? s : null;
    }, 10_000, 50).catch(async () => scrape());
    expect(seriesWith(hostGone, "host", "other")).toEqual([]);
    expect(seriesWith(hostGone, "model", "mover")).toEqual([]);
    expect(seriesWith(hostGone, "host", "local").length).toBeGreaterThan(0);
    expectKeepSeries(hostGone);
  });
});

describe("with the gateway in its worker thread", () => {
  let g: GatewayFixture;
  let w: GatewayWorker;
  let metrics: AppMetrics;

  beforeAll(async () => {
    g = await gatewayFixture({
      metrics: (f) => (metrics = createAppMetrics({ db: f.t.db, fleet: f.fleet, events: f.events, log: testLogger(), intervalMs: 0 })).gateway,
    });
    w = await startGatewayWorker(g, { metrics: metrics.gateway });
  });
  afterAll(async () => {
    await w?.dispose();
    await metrics?.close();
    await g?.dispose();
  });

  it("a deleted model's series are gone, the other model's stay", async () => {
    const [keep, gone] = [await g.addModel("w-keep"), await g.addModel("w-gone")];
    for (const m of [keep, gone]) {
      expect((await g.f.fleet.start(m.id, { wait: true })).state).toBe("ready");
      await w.client.chat.completions.create(chat(m.name));
    }
    const scrape = async () => {
      await metrics.tick();
      return parsePrometheusText((await metrics.text()).body);
    };
    // The worker's notes (records each request's end, queues each second) have reached the main thread.
    await waitFor("the worker's figures of both models", async () => {
      const s = await scrape();
      return ["w-keep", "w-gone"].every((n) => families(seriesWith(s, "model", n)).has("synapse_gateway_requests_queued") && families(seriesWith(s, "model", n)).has("synapse_gateway_requests_total"));
    }, 10_000, 100);

    await g.f.fleet.stop(gone.id);
    await deleteModel(g.f.t.db, { id: gone.id });
    const after = await waitFor("the deleted model's series to go", async () => {
      const s = await scrape();
      return seriesWith(s, "model", "w-gone").length === 0 ? s : null;
    }, 10_000, 100).catch(async () => scrape());
    expect(seriesWith(after, "model", "w-gone")).toEqual([]);
    const kept = families(seriesWith(after, "model", "w-keep"));
    for (const name of ["synapse_gateway_requests_total", "synapse_gateway_time_to_first_token_seconds", "synapse_gateway_request_duration_seconds", "synapse_gateway_completion_tokens_total", "synapse_gateway_requests_running", "synapse_gateway_requests_queued", "synapse_server_ready"]) {
      expect(kept, name).toContain(name);
    }
    expect(after.get('synapse_gateway_requests_total{model="w-keep",host="local",key="open",status="200"}')).toBe(1);
    await g.f.fleet.stop(keep.id);
  });
});
