import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { createGatewayFigures } from "./gateway-figures";
import { parsePrometheusText } from "./llama-text";

describe("the gateway's figures", () => {
  it("counts requests and errors by status, per model, host and key, with tokens and histograms", async () => {
    const registry = new Registry();
    const g = createGatewayFigures(registry);
    const base = { model: "m", host: "mac", key: "ci", firstByteS: 0.05, durationS: 0.2 };
    g.record({ ...base, status: 200, tokens: { prompt: 12, cachedPrompt: 4, completion: 7 } });
    g.record({ ...base, status: 200, tokens: { prompt: 3, cachedPrompt: 0, completion: 5 } });
    g.record({ ...base, status: 429, firstByteS: null, durationS: 0.001, tokens: null });
    g.record({ model: "", host: "", key: "", status: 401, firstByteS: null, durationS: 0.001, tokens: null });
    const m = parsePrometheusText(await registry.metrics());
    const l = 'model="m",host="mac",key="ci"';
    expect(m.get(`synapse_gateway_requests_total{${l},status="200"}`)).toBe(2);
    expect(m.get(`synapse_gateway_requests_total{${l},status="429"}`)).toBe(1);
    expect(m.get(`synapse_gateway_request_errors_total{${l},status="429"}`)).toBe(1);
    expect(m.has(`synapse_gateway_request_errors_total{${l},status="200"}`)).toBe(false);
    expect(m.get('synapse_gateway_request_errors_total{model="",host="",key="",status="401"}')).toBe(1);
    expect(m.get(`synapse_gateway_prompt_tokens_total{${l}}`)).toBe(15);
    expect(m.get(`synapse_gateway_prompt_cached_tokens_total{${l}}`)).toBe(4);
    expect(m.get(`synapse_gateway_completion_tokens_total{${l}}`)).toBe(12);
    expect(m.get(`synapse_gateway_time_to_first_token_seconds_count{${l}}`)).toBe(2);
    expect(m.get(`synapse_gateway_request_duration_seconds_count{${l}}`)).toBe(3);
    expect(m.get(`synapse_gateway_request_duration_seconds_bucket{le="0.25",${l}}`)).toBe(3);
    // The chart's latency: answered requests since the last take, then none.
    expect(g.takeInterval().get("m")).toEqual({ count: 2, seconds: 0.4 });
    expect(g.takeInterval().size).toBe(0);
  });
  it("reads queues from the current gateway only; an old gateway's close does not remove a newer source", async () => {
    const registry = new Registry();
    const g = createGatewayFigures(registry);
    const unsetOld = g.setQueueSource(() => [{ modelId: "1", model: "m", host: "mac", running: 9, queued: 9 }]);
    g.setQueueSource(() => [{ modelId: "1", model: "m", host: "mac", running: 1, queued: 3 }]);
    unsetOld();
    const m = parsePrometheusText(await registry.metrics());
    expect(m.get('synapse_gateway_requests_queued{model="m",host="mac"}')).toBe(3);
    expect(m.get('synapse_gateway_requests_running{model="m",host="mac"}')).toBe(1);
  });
  it("retain removes every series of a pair the registry no longer has, but not one recorded after the registry was read", async () => {
    const registry = new Registry();
    const g = createGatewayFigures(registry);
    const ok = { key: "ci", status: 200, firstByteS: 0.05, durationS: 0.2, tokens: { prompt: 3, cachedPrompt: 1, completion: 2 } };
    g.record({ ...ok, model: "gone", host: "mac" });
    g.record({ ...ok, model: "gone", host: "mac", key: "admin", status: 500, tokens: null });
    g.record({ ...ok, model: "moved", host: "mac" });
    g.record({ ...ok, model: "kept", host: "mac" });
    g.record({ model: "", host: "", key: "", status: 401, firstByteS: null, durationS: 0.001, tokens: null });
    const since = g.mark();
    // Ends under its old name after the registry was read: stays until the next read.
    g.record({ ...ok, model: "late", host: "mac" });
    const removed = g.retain([{ model: "kept", host: "mac" }, { model: "moved", host: "linux" }], since);
    expect(removed).toEqual([{ model: "gone", host: "mac" }, { model: "moved", host: "mac" }]);
    const names = [...parsePrometheusText(await registry.metrics()).keys()];
    expect(names.filter((k) => k.includes('model="gone"') || k.includes('model="moved"'))).toEqual([]);
    expect(names).toContain('synapse_gateway_requests_total{model="kept",host="mac",key="ci",status="200"}');
    expect(names).toContain('synapse_gateway_requests_total{model="late",host="mac",key="ci",status="200"}');
    expect(names).toContain('synapse_gateway_request_errors_total{model="",host="",key="",status="401"}');
    // The next read's retain takes it; a pair that comes back counts from 0.
    expect(g.retain([{ model: "kept", host: "mac" }], g.mark())).toEqual([{ model: "late", host: "mac" }]);
    g.record({ ...ok, model: "gone", host: "mac" });
    expect(parsePrometheusText(await registry.metrics()).get('synapse_gateway_requests_total{model="gone",host="mac",key="ci",status="200"}')).toBe(1);
  });
});
