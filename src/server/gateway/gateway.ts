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
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { GuardSettings } from "~/server/http/guard";
import { displayState } from "~/shared/display-state";
import { checkAccess, checkModelAllowed, type Caller } from "./access";
import type { KeyStore } from "./key-store";
import { createAdmission } from "./admission";
import { createIdleUnloader } from "./idle-unload";
import { aborted, createReadyWaiter, modelRemoved } from "./ensure-ready";
import { readinessStep } from "./readiness";
import type { GatewayFleet, GatewayModel, HostReach } from "./fleet-port";
import { AnswerTail } from "./answer-usage";
import { findModel } from "./find-model";
import type { GatewayMetrics } from "./metrics-port";
import { GatewayError, sendError, sendJson } from "./openai-error";
import { MAX_BODY_BYTES, modelOfBody, modelOfQuery, readBody, tooLarge } from "./request-body";
import { matchRoute, pathOf, servedPaths } from "./routes";
import type { ForwardOutcome, UpstreamOptions } from "./upstream";
import { appShuttingDown, linkLostUnderRequest, stoppedUnderRequest, type ModelStopping } from "./stopping";
import type { ShutdownNotice } from "~/server/services/fleet/fleet-types";
import { createRawUpstream, type AnswerSink, type RawTarget, type RawUpstream, type ServerEnding } from "./raw-upstream";

export interface GatewayOptions {
  fleet: GatewayFleet;
  /** Host allowlist, listen address and admin token (from the app's env). */
  guard: GuardSettings;
  /** Gateway API keys (null: none accepted). */
  keys?: KeyStore | null;
  upstream?: UpstreamOptions;
  /** Idle unload sweep period (ms); default 1000. */
  idleSweepMs?: number;
  maxBodyBytes?: number;
  /** Where each request's figures go (null: nowhere). */
  metrics?: GatewayMetrics | null;
  now?: () => number;
  log?: { warn(msg: string, data?: Record<string, unknown>): void };
  /**
   * Which ssh hosts cannot be reached now, as the status view decides it, for /v1/models' `host_reachable` and `state_is_last_known`
   * (what `synapse status` says as "last known; host unreachable"). Absent: every host is taken as reachable.
   */
  hostReach?: HostReach;
}

export interface Gateway {
  handles(url: string): boolean;
  /** Serves a request Node's http server parsed (a connection fast-path.ts handed over, or tests' servers). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Serves a request the fast path read itself (fast-path.ts), answering on its client connection. */
  handleRaw(req: RawClientRequest, client: RawClient): Promise<void>;
  close(): void;
}

/** A request as fast-path.ts read it: the whole body is in hand. */
export interface RawClientRequest {
  method: string;
  url: string;
  /** Lower-case names, repeats joined as Node joins them (access.ts reads these). */
  headers: IncomingHttpHeaders;
  /** The header lines as sent, for the upstream request. */
  rawHeaders: [string, string][];
  body: Buffer;
}

/** The client connection of a fast-path request, as the gateway answers on it. */
export interface RawClient {
  /** True once the client went away before the answer ended. */
  readonly gone: boolean;
  /** Calls `cb` once if the client goes away before the answer ends; returns the function that stops that. */
  onGone(cb: () => void): () => void;
  /** Status of the answer written (0: none yet). */
  readonly statusCode: number;
  sendError(err: GatewayError, headers?: Record<string, string>): void;
  sendJson(status: number, value: unknown): void;
  /** A sink for one upstream answer; `onData` sees each piece of its body first (the figures). */
  sink(onData?: (chunk: Buffer) => void): AnswerSink;
  destroy(): void;
}

/**
 * One request, whichever server read it: what `serve` needs of the client
 * side. Node's (req, res) and the fast path's raw connection each make one.
 */
interface Exchange {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** The request's body; at once when it is already in hand (the fast path). */
  body(maxBytes: number): Buffer | Promise<Buffer>;
  readonly gone: boolean;
  onGone(cb: () => void): () => void;
  /** The status written, when an answer was written in full; null otherwise. */
  answeredStatus(): number | null;
  sendError(err: GatewayError, headers?: Record<string, string>): void;
  sendJson(status: number, value: unknown): void;
  /**
   * `onEnding`: raw-upstream.ts's, for the model's server stopping under the request. `onSent`: called as the
   * request is written to a connection to the server (not when no connection could be made).
   */
  forward(model: GatewayModel, body: Buffer | null, onData: ((chunk: Buffer) => void) | undefined, onEnding: ServerEnding, onSent: () => void): Promise<ForwardOutcome>;
  destroy(): void;
}

function notFound(models: readonly GatewayModel[], name: string): GatewayError {
  const names = models.map((m) => m.name);
  const list = names.length === 0 ? "no models are registered" : `known models: ${names.join(", ")}`;
  return new GatewayError(404, "not_found_error", "model_not_found", `model ${JSON.stringify(name)} does not exist; ${list}`, { param: "model" });
}

/** Epoch milliseconds as whole Unix seconds (null stays null). */
function unixSeconds(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms / 1000);
}

/** /props or /slots of an on-demand model that is not loaded (they do not load it). */
function notLoaded(m: GatewayModel): GatewayError {
  return new GatewayError(409, "conflict_error", "model_not_loaded", `model ${JSON.stringify(m.name)} is not loaded: it loads on demand, with its next completion request (or its Start button); /props and /slots do not load it`);
}

/** The raw relay's answer written through Node's ServerResponse (the gateway's Node path; Node frames the body). */
function responseSink(res: ServerResponse, onData: ((chunk: Buffer) => void) | undefined): AnswerSink {
  let waking: (() => void) | null = null;
  const onDrain = () => {
    const w = waking;
    waking = null;
    w?.();
  };
  return {
    get started() {
      return res.headersSent;
    },
    head(h) {
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of h.headers) {
        const key = k.toLowerCase();
        const had = headers[key];
        headers[key] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
      }
      if (h.length !== null) headers["content-length"] = String(h.length);
      res.writeHead(h.status, headers);
      // A stream: its client sees the answer begin before the first token.
      if (h.streamed) res.flushHeaders();
    },
    data(pieces, resume) {
      // The end of the read that held the head, with no body: nothing to write (a stream's head went out with
      // flushHeaders; another answer's goes with its first write).
      if (pieces.length === 0) return true;
      // The pieces are lent (AnswerSink.data): one copy, which res keeps until it is written.
      const chunk = Buffer.concat(pieces);
      onData?.(chunk);
      const ok = res.write(chunk);
      if (!ok && waking === null) {
        waking = resume;
        res.once("drain", onDrain);
      }
      return ok;
    },
    end(last) {
      if (last === undefined) {
        res.end();
        return;
      }
      const chunk = Buffer.concat(last);
      onData?.(chunk);
      res.end(chunk);
    },
    cut: () => res.destroy(),
    error: (err) => sendError(res, err),
  };
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
  const rawUpstream: RawUpstream = createRawUpstream(options.upstream);
  const waiter = createReadyWaiter(fleet, now);
  const admission = createAdmission(now);
  const metrics = options.metrics ?? null;
  // Model names and hosts of the queues, for the figures (one entry per model that had a request).
  const queueNames = new Map<string, { model: string; host: string }>();
  const unsetQueueSource = metrics?.setQueueSource(() =>
    [...queueNames].map(([modelId, n]) => ({ modelId, ...n, ...admission.counts(modelId) })),
  );
  /**
   * The queues' names as the registry has them (a rename or move without a request since relabels them), and no
   * entry for a model it no longer has once nothing runs or waits there: its gauges go with it.
   */
  function followRegistry(models: readonly GatewayModel[]): void {
    if (queueNames.size === 0) return;
    const byId = new Map(models.map((m) => [m.id, m]));
    for (const [id, named] of queueNames) {
      const m = byId.get(id);
      if (m) {
        if (named.model !== m.name || named.host !== m.host) queueNames.set(id, { model: m.name, host: m.host });
        continue;
      }
      const c = admission.counts(id);
      if (c.running === 0 && c.queued === 0) queueNames.delete(id);
    }
  }
  /**
   * The requests being answered, by model id: what each does when its model's server stops under it (a stop or
   * restart: stopping.ts). The server waits for them before it exits; they end at once, told why.
   */
  const answering = new Map<string, Set<(s: ModelStopping | null) => void>>();
  /** Stop notices so far, and the number of each model's last one: a request that began before it looks again. */
  let notices = 0;
  const lastNotice = new Map<string, number>();
  const offStopping = fleet.onStopping?.((s) => {
    lastNotice.set(s.modelId, ++notices);
    const on = answering.get(s.modelId);
    if (on) for (const end of [...on]) end(s);
  });
  /**
   * Set as the app begins to shut down (GatewayFleet.onShutdown): work is refused from then on (503
   * app_shutting_down), the requests that wait for a start or a place are ended so, and those being answered
   * go on until the notice's drainUntil, when they are ended so too (their servers are then stopped, or the
   * app exits under them).
   */
  let shutdown: (ShutdownNotice & { at: number }) | null = null;
  /** The waits (a start, a place) of requests not yet forwarded: ended at the app's shutdown. */
  const waiting = new Set<AbortController>();
  let drainTimer: NodeJS.Timeout | null = null;
  const offShutdown = fleet.onShutdown?.((notice) => {
    if (shutdown) return;
    shutdown = { ...notice, at: now() };
    for (const a of [...waiting]) a.abort();
    drainTimer = setTimeout(() => {
      for (const on of [...answering.values()]) for (const end of [...on]) end(null);
    }, Math.max(0, notice.drainUntil - Date.now()));
    drainTimer.unref();
  });
  function shutdownRefusal(name: string): GatewayError {
    return appShuttingDown(name, shutdown!);
  }
  /** raw-upstream.ts's onEnding for one request to `model`. */
  function endingOf(model: GatewayModel): ServerEnding {
    return (cb) => {
      let on = answering.get(model.id);
      if (!on) answering.set(model.id, (on = new Set()));
      // null: the shutdown's wait for requests in flight is over. A stop during the shutdown is told with its words,
      // as the shutdown's: at or after the drain's end, as its end (the servers are then stopped under what is
      // left); before it, as what it is (a crash; a stop of the shutdown's, once no request was counted).
      const end = (s: ModelStopping | null) => {
        if (!shutdown) return cb(s!.unreachable ? linkLostUnderRequest(model.name, model.host, s!.why) : stoppedUnderRequest(model.name, s!.why, s!.ended));
        const drainOver = s === null || Date.now() >= shutdown.drainUntil;
        cb(appShuttingDown(model.name, shutdown, drainOver ? { waitedS: Math.round((shutdown.drainUntil - shutdown.at) / 1000) } : s));
      };
      on.add(end);
      return () => {
        on.delete(end);
        if (on.size === 0 && answering.get(model.id) === on) answering.delete(model.id);
      };
    };
  }

  const idle = createIdleUnloader({
    fleet,
    now,
    ...(options.idleSweepMs !== undefined ? { sweepMs: options.idleSweepMs } : {}),
    onError: (msg, data) => options.log?.warn(msg, data),
    ...(metrics ? { onModels: followRegistry } : {}),
  });

  /**
   * The ids of the hosts, among `models`', that cannot be reached now (GatewayOptions.hostReach: as `synapse status`
   * and the dashboard decide it); null when that could not be asked (logged): the list is then
   * answered without the reach fields. Only ssh hosts are asked; a local host is always reachable.
   */
  async function unreachableHosts(models: readonly GatewayModel[]): Promise<ReadonlySet<string> | null> {
    const ssh = new Map<string, { id: string; linkKind: "ssh" }>();
    for (const m of models) if (m.hostLink === "ssh") ssh.set(m.hostId, { id: m.hostId, linkKind: "ssh" });
    if (ssh.size === 0 || !options.hostReach) return new Set();
    try {
      const away = await options.hostReach([...ssh.values()]);
      return new Set([...ssh.keys()].filter((id) => away[id] === true));
    } catch (err) {
      options.log?.warn("/v1/models: the hosts' links could not be read; answered without host_reachable and state_is_last_known", { error: err instanceof Error ? err.message : String(err) });
      return null;
    }
  }

  /**
   * One model as OpenAI's model object (id, object, created, owned_by), with the fleet's own fields after them.
   * `away`: the ids of the hosts that cannot be reached now (unreachableHosts); null: not known (no reach fields).
   */
  function modelObject(m: GatewayModel, away: ReadonlySet<string> | null): Record<string, unknown> {
    return {
      id: m.name,
      object: "model",
      created: m.createdS,
      owned_by: m.host,
      // Beyond OpenAI's fields (clients ignore what they do not know):
      aliases: m.alias ? [m.alias] : [],
      // The word the dashboard and `synapse status` use: an on-demand model that is not loaded is "idle", one
      // wanted running that has not begun starting "queued"; else its server's state, which server_state holds.
      state: displayState(m.state, m.desired, m.loadPolicy).key,
      server_state: m.state,
      // As `synapse status`'s "(last known; host unreachable)": while the host cannot be reached, state and
      // server_state are the last the app was told, not what runs there now.
      ...(away !== null ? { host_reachable: !away.has(m.hostId), state_is_last_known: away.has(m.hostId) } : {}),
      enabled: m.enabled,
      load_policy: m.loadPolicy,
      in_flight: fleet.usage(m.id).inFlight,
      // Unix seconds, as `created` (OpenAI's unit); null while in use or not loaded.
      ...(m.loadPolicy === "on-demand" ? { idle_unload_at: unixSeconds(fleet.usage(m.id).idleUnloadAt) } : {}),
    };
  }

  /** The models a caller's key covers (every model for a key without a list, the admin token or a session). */
  function visibleTo(caller: Caller): (models: readonly GatewayModel[]) => readonly GatewayModel[] {
    return (models) => (caller.models === null ? models : models.filter((m) => caller.models!.has(m.name)));
  }

  async function listModels(ex: Exchange, caller: Caller): Promise<void> {
    const models = visibleTo(caller)(await fleet.models());
    const away = await unreachableHosts(models);
    ex.sendJson(200, { object: "list", data: models.map((m) => modelObject(m, away)) });
  }

  /**
   * OpenAI's retrieve: one model by registry name or alias; 404 listing the
   * models the caller may see otherwise; 403 for a model the caller's key
   * does not cover, as a completion for it gets.
   */
  async function retrieveModel(ex: Exchange, caller: Caller, name: string): Promise<void> {
    const model = await resolve(name, visibleTo(caller));
    checkModelAllowed(caller, model.name);
    ex.sendJson(200, modelObject(model, await unreachableHosts([model])));
  }

  /**
   * The model named `name` (registry name or alias): the snapshot first, then
   * a fresh read; 404 otherwise, listing the names of the models `listed`
   * keeps (those the caller may see: a limited key learns no other names).
   */
  function resolve(name: string, listed: (models: readonly GatewayModel[]) => readonly GatewayModel[]): GatewayModel | Promise<GatewayModel> {
    const held = fleet.modelsNow?.() ?? null;
    const found = held !== null ? findModel(held, name) : null;
    return found ?? resolveAsking(name, listed);
  }

  async function resolveAsking(name: string, listed: (models: readonly GatewayModel[]) => readonly GatewayModel[]): Promise<GatewayModel> {
    const found = findModel(await fleet.models(), name);
    if (found) return found;
    const fresh = await fleet.models({ fresh: true });
    return findModel(fresh, name) ?? Promise.reject(notFound(listed(fresh), name));
  }

  function describe(model: GatewayModel): string {
    const where = model.upstream!;
    return `model ${JSON.stringify(model.name)} (${model.via === "ssh" ? `host ${model.host}, ${where.host}:${where.port} through ssh` : `${where.host}:${where.port}`})`;
  }

  async function serve(ex: Exchange, fig: RequestFigures): Promise<void> {
    /** Stop notices before this request looked at its model (a later one for its model: it looks again). */
    let seenNotices = notices;
    const url = ex.url;
    const route = matchRoute(url);
    if (!route) throw new GatewayError(404, "not_found_error", "not_found", `no gateway route ${url}`);
    const method = ex.method;
    const access = checkAccess(method, url, ex.headers, guard, options.keys ?? null);
    const caller = access instanceof Promise ? await access : access;
    fig.key = callerLabel(caller);
    // As OpenAI answers a path it does not serve ("Invalid URL (POST /v1/x)"), with the paths served here.
    if (route.kind === "unknown") throw new GatewayError(404, "invalid_request_error", "unknown_url", `Invalid URL (${method} ${pathOf(url)}): the gateway serves ${servedPaths()}`);
    const allowed = route.kind === "proxy" ? route.method : "GET";
    if (method !== allowed) throw Object.assign(new GatewayError(405, "invalid_request_error", "method_not_allowed", `${url.split("?")[0]} takes ${allowed}`), { allow: allowed });
    if (route.kind === "models") return listModels(ex, caller);
    if (route.kind === "model") return retrieveModel(ex, caller, route.name);

    const read = route.modelFrom === "body" ? ex.body(maxBodyBytes) : null;
    const body = read instanceof Promise ? await read : read;
    const name = body !== null ? modelOfBody(body) : modelOfQuery(url);
    const resolved = resolve(name, visibleTo(caller));
    let model = resolved instanceof Promise ? await resolved : resolved;
    fig.model = model.name;
    fig.host = model.host;
    checkModelAllowed(caller, model.name);
    // Work during the app's shutdown: not started, not queued (looks at /props and /slots still answer).
    if (shutdown && route.method === "POST") throw shutdownRefusal(model.name);
    if (metrics) {
      // The names as the model has them now: a rename or a move to another host relabels its gauges.
      const named = queueNames.get(model.id);
      if (named?.model !== model.name || named.host !== model.host) queueNames.set(model.id, { model: model.name, host: model.host });
    }

    // A POST is work for the model. llama-server's /props and /slots (GET) are looks at it: they take no
    // place, do not count as use (a monitor polling /slots would keep an on-demand model loaded for good),
    // and do not load an unloaded one.
    const work = route.method === "POST";
    // In flight from here: waiting for a start or a place counts, so the model is not unloaded under it. Its
    // last use and idle countdown wait for it to be served (below): a refused request is no use of the model.
    const use = work ? fleet.beginRequest(model.id) : null;
    const onDemand = work && model.loadPolicy === "on-demand";
    // The client's leaving, as a signal for the waits (a start, a queue place) and the forward; made only
    // when one is needed: a ready model with a free place, the usual request, waits for neither.
    let abort: AbortController | null = null;
    const signal = (): AbortSignal => {
      if (!abort) {
        abort = new AbortController();
        if (ex.gone || shutdown) abort.abort();
        waiting.add(abort);
      }
      return abort.signal;
    };
    const offGone = ex.onGone(() => abort?.abort());
    let release: (() => void) | null = null;
    try {
      try {
        for (;;) {
          for (;;) {
            if (!work && (readinessStep(model, now()).kind === "start" || idle.unloading(model.id))) throw notLoaded(model);
            if (readinessStep(model, now()).kind !== "proceed") model = await waiter.ensureReady(model, signal());
            // Being unloaded for idleness as this request came: let the stop finish, then start it again. A wait the
            // client's leaving or the app's shutdown ends (499, told as the shutdown's below) as the others are.
            const unloading = idle.unloading(model.id);
            if (!unloading) break;
            const waitEnded = signal();
            await Promise.race([unloading, aborted(waitEnded)]);
            if (waitEnded.aborted) throw new GatewayError(499, "invalid_request_error", "client_closed", "the client went away while the model was being unloaded");
          }
          // A place is a slot's work: /props and /slots answer while every slot is busy, which is when they are
          // looked at; they do not queue behind completions (nor get 429).
          if (work && !release) release = admission.tryAcquire(model.id, model) ?? (await admission.acquire(model.id, model.name, model, signal()));
          // No stop of its server noticed since this request looked at the model (the usual case: nothing read):
          // forwarded, registered for a notice from here on (endingOf) in this same turn.
          if ((lastNotice.get(model.id) ?? 0) <= seenNotices) break;
          // Noticed while it waited (for a place, a start or a read): what it read may be the server that is going.
          // Looked at again on the registry as it is now: a restart is waited for, a stop refused for what it is.
          // It keeps its place meanwhile, so the requests queued behind it stay behind it (FIFO) whatever order
          // their reads come back in; nothing else could use the place while the model's server is not there.
          seenNotices = notices;
          const fresh = (await fleet.models({ fresh: true, only: model.id })).find((x) => x.id === model.id);
          if (!fresh) throw modelRemoved(model.name);
          model = fresh;
        }
      } catch (err) {
        // A wait the app's shutdown ended (it aborts them all): told so, not taken for a client that left.
        if (shutdown && !ex.gone && err instanceof GatewayError && err.status === 499) throw shutdownRefusal(model.name);
        throw err;
      } finally {
        if (abort) waiting.delete(abort);
      }
      // The shutdown began as the waits ended: not forwarded.
      if (shutdown && work) throw shutdownRefusal(model.name);
      if (ex.gone) return;
      // Served once it reaches the server: last used now, and its idle deadline shown (idle_unload_at, the
      // dashboard's countdown) goes at once. A request that could not reach it (its host unreachable, nothing
      // listening) does not count, as a refused one does not (a trial saw 502s during an outage set LAST USED).
      let sent = false;
      const onSent = () => {
        if (sent) return;
        sent = true;
        use?.served();
      };
      const tail = metrics ? (fig.tail = new AnswerTail()) : null;
      const onData = tail
        ? (chunk: Buffer) => {
            fig.firstByteAt ??= now();
            tail.push(chunk);
          }
        : undefined;
      const outcome = await ex.forward(model, body, onData, endingOf(model), onSent);
      fig.status = outcome.clientClosed ? 499 : outcome.status;
    } finally {
      offGone();
      release?.();
      use?.end();
      // A sweep soon sets its deadline: from this end when it was served, else as it was (a start it waited for
      // may have loaded the model meanwhile).
      if (onDemand) idle.ended();
    }
  }

  async function run(ex: Exchange): Promise<void> {
    const startedAt = now();
    const fig: RequestFigures = { model: "", host: "", key: "", firstByteAt: null, tail: null, status: null };
    let status = 500;
    try {
      await serve(ex, fig);
      // No upstream answer and none of its own: the client left while it waited for a place.
      status = fig.status ?? ex.answeredStatus() ?? 499;
    } catch (err) {
      if (err instanceof GatewayError) {
        status = err.status;
        if (err.status === 499) ex.destroy();
        else ex.sendError(err, (err as GatewayError & { allow?: string }).allow ? { allow: (err as GatewayError & { allow: string }).allow } : undefined);
        return;
      }
      options.log?.warn("gateway request failed", { url: ex.url, error: err instanceof Error ? err.message : String(err) });
      ex.sendError(new GatewayError(500, "server_error", "internal_error", "the gateway failed; see the app's log"));
    } finally {
      if (metrics) record(metrics, fig, status, startedAt, now());
    }
  }

  /** The Exchange over Node's (req, res): body read from the stream, answers through res, forwards with upstream.ts. */
  function nodeExchange(req: IncomingMessage, res: ServerResponse): Exchange {
    let gone = false;
    const watchers = new Set<() => void>();
    const onClose = () => {
      if (res.writableFinished) return;
      gone = true;
      for (const w of watchers) w();
    };
    res.once("close", onClose);
    return {
      method: req.method ?? "GET",
      url: req.url ?? "/",
      headers: req.headers,
      body: (max) => readBody(req, max),
      get gone() {
        return gone;
      },
      onGone(cb) {
        if (gone) {
          cb();
          return () => undefined;
        }
        watchers.add(cb);
        return () => watchers.delete(cb);
      },
      answeredStatus: () => (res.writableEnded ? res.statusCode : null),
      sendError(err, headers) {
        if (headers) for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
        sendError(res, err);
      },
      sendJson: (status, value) => sendJson(res, status, value),
      forward(model, body, onData, onEnding, onSent) {
        const rawHeaders: [string, string][] = [];
        for (let i = 0; i < req.rawHeaders.length; i += 2) rawHeaders.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
        return rawUpstream.forward({ method: req.method ?? "GET", path: req.url ?? "/", headers: rawHeaders, body }, rawTarget(model), responseSink(res, onData), (cb) => this.onGone(cb), () => describe(model), onEnding, onSent);
      },
      destroy: () => res.destroy(),
    };
  }

  /** Targets by model object: the fleet hands out the same objects until its list changes, so a request builds none. */
  const targets = new WeakMap<GatewayModel, RawTarget>();
  /** Where the fast path's raw upstream connects for a model: TCP, or a channel on its ssh host's connection. */
  function rawTarget(model: GatewayModel): RawTarget {
    let target = targets.get(model);
    if (!target) targets.set(model, (target = makeTarget(model)));
    return target;
  }

  function makeTarget(model: GatewayModel): RawTarget {
    const where = model.upstream!;
    if (model.via !== "ssh") return { key: `${where.host}:${where.port}`, host: where.host, port: where.port, apiKey: model.serverApiKey };
    return {
      key: `ssh ${model.hostId} ${where.port}`,
      host: where.host,
      port: where.port,
      apiKey: model.serverApiKey,
      connect: () => (fleet.connect ? fleet.connect(model.hostId, where.port, { timeoutMs: 5_000 }) : Promise.reject(new Error(`host ${model.host} is reached over ssh, and this gateway was given no way to open channels to it`))),
    };
  }

  function rawExchange(req: RawClientRequest, client: RawClient): Exchange {
    return {
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: (max) => {
        if (req.body.length > max) throw tooLarge(max);
        return req.body;
      },
      get gone() {
        return client.gone;
      },
      onGone: (cb) => client.onGone(cb),
      answeredStatus: () => (client.statusCode === 0 ? null : client.statusCode),
      sendError: (err, headers) => client.sendError(err, headers),
      sendJson: (status, value) => client.sendJson(status, value),
      forward(model, body, onData, onEnding, onSent) {
        return rawUpstream.forward({ method: req.method, path: req.url, headers: req.rawHeaders, body }, rawTarget(model), client.sink(onData), (cb) => client.onGone(cb), () => describe(model), onEnding, onSent);
      },
      destroy: () => client.destroy(),
    };
  }

  return {
    handles(url) {
      return matchRoute(url) !== undefined;
    },
    handle(req, res) {
      // Node's parser keeps the first of two Host headers and serves the request; the gateway refuses it (RFC 9112 §3.2), as the fast path does.
      let hosts = 0;
      for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === "host") hosts++;
      if (hosts > 1) {
        sendError(res, new GatewayError(400, "invalid_request_error", "bad_request", "the request has more than one Host header (RFC 9112 §3.2)"));
        return Promise.resolve();
      }
      return run(nodeExchange(req, res));
    },
    handleRaw: (req, client) => run(rawExchange(req, client)),
    close() {
      offStopping?.();
      offShutdown?.();
      if (drainTimer) clearTimeout(drainTimer);
      unsetQueueSource?.();
      idle.close();
      rawUpstream.close();
    },
  };
}

