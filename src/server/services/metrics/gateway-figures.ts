/**
 * The gateway's figures as Prometheus metrics (prom-client), per model,
 * host and API key; implements the gateway's GatewayMetrics port.
 *
 *   synapse_gateway_requests_total{model,host,key,status}        counter
 *   synapse_gateway_request_errors_total{model,host,key,status}  counter (status >= 400)
 *   synapse_gateway_time_to_first_token_seconds{model,host,key}  histogram: arrival to the
 *       model's first answer byte (waiting for a start and a queue place included); for a
 *       stream that is its first event
 *   synapse_gateway_request_duration_seconds{model,host,key}     histogram: arrival to the end
 *   synapse_gateway_prompt_tokens_total{model,host,key}          counter: every prompt token,
 *       cached ones included (OpenAI's usage.prompt_tokens)
 *   synapse_gateway_prompt_cached_tokens_total{model,host,key}   counter: of those, reused from the cache
 *   synapse_gateway_completion_tokens_total{model,host,key}      counter
 *   synapse_gateway_requests_running{model,host}                 gauge: answered now
 *   synapse_gateway_requests_queued{model,host}                  gauge: waiting for a place
 *
 * `model` and `host` are "" for requests refused before a model was known
 * (so a client cannot make up label values); `key` is the API key's name,
 * "admin", "open", or "".
 *
 * It also keeps, per model name, the requests that ended since the last
 * `takeInterval` (count, total seconds): the charts' latency points.
 *
 * A model's series go when the model does: `retain` (called by the
 * collector after each read of the registry) removes every series of a
 * {model, host} pair the registry no longer has (a deleted model, a renamed
 * one's old name, a moved one's old host), from every family above; its
 * counters start again from 0 if the pair comes back (a new model taking the
 * name), which Prometheus's rate() reads as a reset. The queue gauges are
 * made from the gateway's queues at each read, which follow the registry
 * themselves (gateway.ts).
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { GatewayMetrics, GatewayRequestRecord, ModelQueue } from "~/server/gateway/metrics-port";

const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** A point in the sequence of records (see `mark` and `retain`). */
export type RecordMark = number;

export interface GatewayFigures extends GatewayMetrics {
  /** The point reached by the records so far: take it before reading the registry, pass it to `retain` after. */
  mark(): RecordMark;
  /**
   * Removes every series of each {model, host} pair not in `live` (the
   * registry's models as a read begun after `since` found them) whose last
   * record came before `since`: a record made after the read began (a request
   * that ended under the old name) stays until the next read's `retain`.
   * Series of requests refused before a model was known (model "") stay.
   * Returns the pairs removed.
   */
  retain(live: Iterable<{ model: string; host: string }>, since: RecordMark): { model: string; host: string }[];
  /** Requests running and queued now, per model id. */
  queues(): ModelQueue[];
  /** Requests that ended since the last call, per model name: count and summed duration (s). Resets. */
  takeInterval(): Map<string, { count: number; seconds: number }>;
}

export function createGatewayFigures(registry: Registry): GatewayFigures {
  const registers = [registry];
  const requests = new Counter({ name: "synapse_gateway_requests_total", help: "Requests the gateway answered, by HTTP status", labelNames: ["model", "host", "key", "status"] as const, registers });
  const errors = new Counter({ name: "synapse_gateway_request_errors_total", help: "Requests answered with an HTTP status of 400 or more (499: the client went away)", labelNames: ["model", "host", "key", "status"] as const, registers });
  const ttft = new Histogram({ name: "synapse_gateway_time_to_first_token_seconds", help: "Time from a request's arrival to the first byte of the model's answer (for a stream, its first event), waits for a start and a queue place included", labelNames: ["model", "host", "key"] as const, buckets: TTFT_BUCKETS, registers });
  const duration = new Histogram({ name: "synapse_gateway_request_duration_seconds", help: "Time from a request's arrival to the end of its answer", labelNames: ["model", "host", "key"] as const, buckets: DURATION_BUCKETS, registers });
  const promptTokens = new Counter({ name: "synapse_gateway_prompt_tokens_total", help: "Prompt tokens of answered requests, cached ones included (OpenAI usage.prompt_tokens)", labelNames: ["model", "host", "key"] as const, registers });
  const cachedTokens = new Counter({ name: "synapse_gateway_prompt_cached_tokens_total", help: "Prompt tokens of answered requests that llama-server reused from its cache", labelNames: ["model", "host", "key"] as const, registers });
  const completionTokens = new Counter({ name: "synapse_gateway_completion_tokens_total", help: "Tokens generated for answered requests", labelNames: ["model", "host", "key"] as const, registers });

  let source: (() => ModelQueue[]) | null = null;
  const queues = (): ModelQueue[] => {
    try {
      return source ? source() : [];
    } catch {
      return [];
    }
  };
  new Gauge({
    name: "synapse_gateway_requests_running",
    help: "Requests the gateway is answering now",
    labelNames: ["model", "host"] as const,
    registers,
    collect() {
      this.reset();
      for (const q of queues()) this.set({ model: q.model, host: q.host }, q.running);
    },
  });
  new Gauge({
    name: "synapse_gateway_requests_queued",
    help: "Requests waiting in the gateway's queue for a place at their model",
    labelNames: ["model", "host"] as const,
    registers,
    collect() {
      this.reset();
      for (const q of queues()) this.set({ model: q.model, host: q.host }, q.queued);
    },
  });

  let interval = new Map<string, { count: number; seconds: number }>();
  // Every series a {model, host} pair has, by the pair: its keys and statuses, and its last record's number.
  const pairs = new Map<string, { model: string; host: string; keys: Map<string, Set<string>>; last: number }>();
  let records = 0;
  const pairKey = (model: string, host: string) => `${model}\u0000${host}`;
  const byKey = [ttft, duration, promptTokens, cachedTokens, completionTokens];
  const byStatus = [requests, errors];

  return {
    record(r: GatewayRequestRecord) {
      const l = { model: r.model, host: r.host, key: r.key };
      const status = String(r.status);
      if (r.model !== "") {
        const k = pairKey(r.model, r.host);
        let p = pairs.get(k);
        if (!p) pairs.set(k, (p = { model: r.model, host: r.host, keys: new Map(), last: 0 }));
        p.last = ++records;
        let statuses = p.keys.get(r.key);
        if (!statuses) p.keys.set(r.key, (statuses = new Set()));
        statuses.add(status);
      }
      requests.inc({ ...l, status });
      if (r.status >= 400) errors.inc({ ...l, status });
      if (r.firstByteS !== null) ttft.observe(l, r.firstByteS);
      duration.observe(l, r.durationS);
      if (r.tokens) {
        promptTokens.inc(l, r.tokens.prompt);
        cachedTokens.inc(l, r.tokens.cachedPrompt);
        completionTokens.inc(l, r.tokens.completion);
      }
      if (r.model !== "" && r.status < 400) {
        const i = interval.get(r.model) ?? { count: 0, seconds: 0 };
        i.count++;
        i.seconds += r.durationS;
        interval.set(r.model, i);
      }
    },
    setQueueSource(s) {
      source = s;
      return () => {
        if (source === s) source = null;
      };
    },
    queues,
    mark: () => records,
    retain(live, since) {
      const keep = new Set<string>();
      for (const m of live) keep.add(pairKey(m.model, m.host));
      const removed: { model: string; host: string }[] = [];
      for (const [k, p] of pairs) {
        if (keep.has(k) || p.last > since) continue;
        for (const [key, statuses] of p.keys) {
          const l = { model: p.model, host: p.host, key };
          for (const metric of byKey) metric.remove(l);
          for (const status of statuses) for (const metric of byStatus) metric.remove({ ...l, status });
        }
        pairs.delete(k);
        removed.push({ model: p.model, host: p.host });
      }
      return removed;
    },
    takeInterval() {
      const out = interval;
      interval = new Map();
      return out;
    },
  };
}
