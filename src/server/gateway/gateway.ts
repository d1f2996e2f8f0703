/**
 * The gateway: one OpenAI-compatible endpoint on the app's port that routes
 * each request by its `model` to that model's llama-server.
 *
 *   handles(url)       true for the paths in routes.ts (the front server gives
 *                      those requests to `handle`, the rest to Next)
 *   handle(req, res)   access checks → model named by the body or ?model= →
 *                      resolve (registry name or alias; 404 listing names) →
 *                      ready (on-demand start, wait while loading, or the
 *                      state's error) → a place (concurrency limit, FIFO
 *                      queue, 429 when full) → forward, chunk by chunk
 *
 * Idle unload of on-demand models runs beside it (idle-unload.ts).
 *
 * Node http types throughout: it runs in front of Next (front.ts), not as a
 * Next route, because Next's per-request cost is larger than llama-server's
 * whole answer to a short completion (see front.ts for the measurement).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { GuardSettings } from "~/server/http/guard";
import { checkAccess, checkModelAllowed, type Caller } from "./access";
import type { KeyStore } from "./key-store";
import { createAdmission } from "./admission";
import { createIdleUnloader } from "./idle-unload";
import { createReadyWaiter } from "./ensure-ready";
import { readinessStep } from "./readiness";
import type { GatewayFleet, GatewayModel } from "./fleet-port";
import { AnswerTail } from "./answer-usage";
import type { GatewayMetrics } from "./metrics-port";
import { GatewayError, sendError, sendJson } from "./openai-error";
import { MAX_BODY_BYTES, modelOfBody, modelOfQuery, readBody } from "./request-body";
import { matchRoute } from "./routes";
import { createSshUpstream, type SshUpstreamOptions } from "./ssh-upstream";
import { createUpstream, type Upstream, type UpstreamOptions } from "./upstream";

export interface GatewayOptions {
  fleet: GatewayFleet;
  /** Host allowlist, listen address and admin token (from the app's env). */
  guard: GuardSettings;
  /** Gateway API keys (null: none accepted). */
  keys?: KeyStore | null;
  upstream?: UpstreamOptions;
  /** Channels to model servers on ssh hosts. */
  sshUpstream?: SshUpstreamOptions;
  /** Idle unload sweep period (ms); default 1000. */
  idleSweepMs?: number;
  maxBodyBytes?: number;
  /** Where each request's figures go (null: nowhere). */
  metrics?: GatewayMetrics | null;
  now?: () => number;
  log?: { warn(msg: string, data?: Record<string, unknown>): void };
}

export interface Gateway {
  handles(url: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  close(): void;
}

/** Finds a model by registry name, then by alias (exact, case-sensitive, as llama-server compares). */
export function findModel(models: readonly GatewayModel[], name: string): GatewayModel | undefined {
  return models.find((m) => m.name === name) ?? models.find((m) => m.alias === name);
}

function notFound(models: readonly GatewayModel[], name: string): GatewayError {
  const names = models.map((m) => m.name);
  const list = names.length === 0 ? "no models are registered" : `known models: ${names.join(", ")}`;
  return new GatewayError(404, "not_found_error", "model_not_found", `model ${JSON.stringify(name)} does not exist; ${list}`, { param: "model" });
}

/** What one request's figures are made of, filled in as it goes. */
interface RequestFigures {
  model: string;
  host: string;
  key: string;
  firstByteAt: number | null;
  tail: AnswerTail | null;
  /** Set when the answer came from the model's server (or the client left during it). */
  status: number | null;
}

function record(metrics: GatewayMetrics, fig: RequestFigures, status: number, startedAt: number, endedAt: number): void {
  try {
    metrics.record({
      model: fig.model,
      host: fig.host,
      key: fig.key,
      status,
      firstByteS: fig.firstByteAt === null ? null : (fig.firstByteAt - startedAt) / 1000,
      durationS: (endedAt - startedAt) / 1000,
      tokens: status === 200 && fig.tail ? fig.tail.tokens() : null,
    });
  } catch {
    // Figures are best effort; a request never fails for them.
  }
}

function callerLabel(caller: Caller): string {
  return caller.kind === "key" ? (caller.keyName ?? "key") : caller.kind;
}

export function createGateway(options: GatewayOptions): Gateway {
  const { fleet, guard } = options;
  const now = options.now ?? Date.now;
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const upstream: Upstream = createUpstream(options.upstream);
  const sshUpstream = createSshUpstream(fleet, options.sshUpstream);
  const waiter = createReadyWaiter(fleet, now);
  const admission = createAdmission(now);
  const metrics = options.metrics ?? null;
  // Model names and hosts of the queues, for the figures (one entry per model that had a request).
  const queueNames = new Map<string, { model: string; host: string }>();
  const unsetQueueSource = metrics?.setQueueSource(() =>
    [...queueNames].map(([modelId, n]) => ({ modelId, ...n, ...admission.counts(modelId) })),
  );
  const idle = createIdleUnloader({ fleet, now, ...(options.idleSweepMs !== undefined ? { sweepMs: options.idleSweepMs } : {}), onError: (msg, data) => options.log?.warn(msg, data) });

  async function listModels(res: ServerResponse, caller: Caller): Promise<void> {
    const models = (await fleet.models()).filter((m) => caller.models === null || caller.models.has(m.name));
    sendJson(res, 200, {
      object: "list",
      data: models.map((m) => ({
        id: m.name,
        object: "model",
        created: m.createdS,
        owned_by: m.host,
        // Beyond OpenAI's fields (clients ignore what they do not know):
        aliases: m.alias ? [m.alias] : [],
        state: m.state,
        enabled: m.enabled,
        load_policy: m.loadPolicy,
        in_flight: fleet.usage(m.id).inFlight,
        ...(m.loadPolicy === "on-demand" ? { idle_unload_at: fleet.usage(m.id).idleUnloadAt } : {}),
      })),
    });
  }

  async function resolve(name: string): Promise<GatewayModel> {
    const found = findModel(await fleet.models(), name);
    if (found) return found;
    const fresh = await fleet.models({ fresh: true });
    return findModel(fresh, name) ?? Promise.reject(notFound(fresh, name));
  }

  async function serve(req: IncomingMessage, res: ServerResponse, fig: RequestFigures): Promise<void> {
    const url = req.url ?? "/";
    const route = matchRoute(url);
    if (!route) throw new GatewayError(404, "not_found_error", "not_found", `no gateway route ${url}`);
    const method = req.method ?? "GET";
    const caller = await checkAccess(method, url, req.headers, guard, options.keys ?? null);
    fig.key = callerLabel(caller);
    const allowed = route.kind === "models" ? "GET" : route.method;
    if (method !== allowed) {
      res.setHeader("allow", allowed);
      throw new GatewayError(405, "invalid_request_error", "method_not_allowed", `${url.split("?")[0]} takes ${allowed}`);
    }
    if (route.kind === "models") return listModels(res, caller);

    const body = route.modelFrom === "body" ? await readBody(req, maxBodyBytes) : null;
    const name = body !== null ? modelOfBody(body) : modelOfQuery(url);
    let model = await resolve(name);
    fig.model = model.name;
    fig.host = model.host;
    checkModelAllowed(caller, model.name);
    if (metrics && !queueNames.has(model.id)) queueNames.set(model.id, { model: model.name, host: model.host });

    // In flight from here: waiting for a start or a place counts, so the model is not unloaded under it.
    const end = fleet.beginRequest(model.id);
    // The client's leaving, as a signal for the waits (a start, a queue place); made only when one is needed:
    // a ready model with a free place, the usual request, waits for neither.
    let abort: AbortController | null = null;
    let clientGone = false;
    const onClose = () => {
      clientGone = true;
      abort?.abort();
    };
    const signal = (): AbortSignal => {
      if (!abort) {
        abort = new AbortController();
        if (clientGone) abort.abort();
      }
      return abort.signal;
    };
    res.once("close", onClose);
    let release: (() => void) | null = null;
    try {
      for (;;) {
        if (readinessStep(model, now()).kind !== "proceed") model = await waiter.ensureReady(model, signal());
        // Being unloaded for idleness as this request came: let the stop finish, then start it again.
        const unloading = idle.unloading(model.id);
        if (!unloading) break;
        await unloading;
      }
      release = admission.tryAcquire(model.id, model) ?? (await admission.acquire(model.id, model.name, model, signal()));
      if (clientGone) return;
      res.off("close", onClose);
      const tail = metrics ? (fig.tail = new AnswerTail()) : null;
      const onData = tail
        ? (chunk: Buffer) => {
            fig.firstByteAt ??= now();
            tail.push(chunk);
          }
        : undefined;
      const where = model.upstream!;
      const viaSsh = model.via === "ssh";
      const outcome = await upstream.forward(
        req,
        res,
        { host: where.host, port: where.port, apiKey: model.serverApiKey, ...(viaSsh ? { agent: sshUpstream.agentFor(model.hostId) } : {}) },
        url,
        body,
        `model ${JSON.stringify(model.name)} (${viaSsh ? `host ${model.host}, ${where.host}:${where.port} through ssh` : `${where.host}:${where.port}`})`,
        onData,
      );
      fig.status = outcome.clientClosed ? 499 : outcome.status;
    } finally {
      res.off("close", onClose);
      release?.();
      end();
    }
  }

  return {
    handles(url) {
      return matchRoute(url) !== undefined;
    },
    async handle(req, res) {
      const startedAt = now();
      const fig: RequestFigures = { model: "", host: "", key: "", firstByteAt: null, tail: null, status: null };
      let status = 500;
      try {
        await serve(req, res, fig);
        // No upstream answer and none of its own: the client left while it waited for a place.
        status = fig.status ?? (res.writableEnded ? res.statusCode : 499);
      } catch (err) {
        if (err instanceof GatewayError) {
          status = err.status;
          if (err.status === 499) res.destroy();
          else sendError(res, err);
          return;
        }
        options.log?.warn("gateway request failed", { url: req.url, error: err instanceof Error ? err.message : String(err) });
        sendError(res, new GatewayError(500, "server_error", "internal_error", "the gateway failed; see the app's log"));
      } finally {
        if (metrics) record(metrics, fig, status, startedAt, now());
      }
    },
    close() {
      unsetQueueSource?.();
      idle.close();
      upstream.close();
      sshUpstream.close();
    },
  };
}
