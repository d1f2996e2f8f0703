/**
 * What the gateway needs from the fleet, and nothing more. One adapter
 * (fleet-adapter.ts) implements it over the Fleet: the per-model usage
 * (requests in flight, last used, idle unload time) is read and written on
 * the model's ServerEntry, the one object per model that the dashboard's
 * status reads too.
 */
import type { Duplex } from "node:stream";
import type { StopCause } from "synapse-host-agent/server-states";
import type { ShutdownNotice } from "~/server/services/fleet/fleet-types";
import type { ModelStopping } from "./stopping";

/** A model's gateway usage at one moment (copied from its ServerEntry). */
export interface ModelUsage {
  /** Requests in flight: queued, waiting for a start, or being answered. */
  inFlight: number;
  /**
   * Epoch ms of the last use by a request that was served (it got a place and reached the model's server):
   * its start, then its end (a stream counts until it ends). A refused request (409, 429, 503), one that could
   * not reach the server (502 host_unreachable, upstream_refused) or one whose client left before it got a
   * place leaves it as it was. Null: none since the app started.
   */
  lastUsedAt: number | null;
  /** Epoch ms at which the idle unloader stops the model; null: not counting down. */
  idleUnloadAt: number | null;
}

/** One request counted in flight (GatewayFleet.beginRequest). */
export interface InFlightRequest {
  /** It got its place and reached the model's server (written to a connection): last used now, the idle countdown off. Once. */
  served(): void;
  /** It ended, answered or not (idempotent): out of the count; last used now if it was served. */
  end(): void;
}

export type LoadPolicy = "always" | "on-demand";

/** A registered model as the gateway routes to it. */
export interface GatewayModel {
  id: string;
  /** Registry name: what clients send as `model`. */
  name: string;
  /** Optional second name clients may use. */
  alias: string | null;
  hostId: string;
  host: string;
  /** Where its llama-server listens, seen from the gateway (at its running process's port: a port edited since applies at its next start); null when the gateway cannot reach that host (`unreachableWhy` says why). */
  upstream: { host: string; port: number } | null;
  /**
   * How the gateway connects to `upstream`: "tcp", a TCP connection (a local
   * host's loopback, or an ssh host in direct mode); "ssh", a channel on the
   * host's ssh connection to 127.0.0.1:port there (GatewayFleet.connect).
   * Absent: "tcp".
   */
  via?: "tcp" | "ssh";
  unreachableWhy: string | null;
  /**
   * How the app reaches the model's host to start and stop it (its Host row's linkKind): "ssh", a link that can
   * be down (GatewayFleet.linkDown); absent or "local": the agent runs in the app.
   */
  hostLink?: "local" | "ssh";
  /** Sent to its llama-server as `Authorization: Bearer` (its LLAMA_API_KEY); null when it runs without one. */
  serverApiKey: string | null;
  enabled: boolean;
  loadPolicy: LoadPolicy;
  /** What the user asked for: "running" | "stopped". */
  desired: string;
  /** What the host reported (server-states.ts). */
  state: string;
  lastError: string | null;
  /**
   * Failed, and its saved settings changed since the start that failed (a fix was saved): an on-demand model's
   * next request starts it again. False otherwise (not failed, or failed with the settings it failed with).
   */
  changedSinceFailure: boolean;
  /**
   * End of a crash backoff, epoch ms; null when none is pending. Kept once it has passed until the restart's
   * start is recorded (`starting`, or the decision after a start that failed): a past time is a restart under way.
   */
  nextRestartAt: number | null;
  /**
   * The app restarts a crashed model (its auto-restart setting, on by default). With it on, an `exited` model
   * with no restart planned (nextRestartAt null), its state written a moment ago (stateWrittenAt), may be a
   * restart's start that failed, awaiting the restart policy's decision: a request waits for what comes (readiness.ts).
   */
  autoRestart: boolean;
  /**
   * When its server state was last written (ServerState.updatedAt, epoch ms, the app's clock); null: no state
   * yet. Bounds the wait for an exited model's restart (readiness.ts RESTART_GAP_WAIT_MS).
   */
  stateWrittenAt: number | null;
  /** llama-server's parallel slots (the default concurrency limit). */
  parallel: number;
  /** Requests served at once; beyond it requests queue. */
  concurrency: number;
  /** Requests that may wait beyond `concurrency`; past it: 429. */
  queueLimit: number;
  /** On-demand: unload after this long without a request (ms). */
  idleMs: number;
  readinessDeadlineMs: number;
  /** Registration time, epoch seconds (OpenAI's `created`). */
  createdS: number;
}

export interface StartOutcome {
  state: string;
  error: string | null;
  /** Not started: it does not fit in its host's memory budget, even after evicting idle on-demand models (the numbers). */
  memoryRefusal?: string;
  /**
   * With memoryRefusal: false when nothing that may stop by itself (an on-demand model's unload, a stop or
   * start under way) would make room, so a retry cannot help (only a person can); absent: it may.
   */
  memoryMayFitLater?: boolean;
  /** The port the start used (the registry's as the start read it). */
  port?: number;
  /** Not started: the registry, read as the start began, no longer calls for a start (disabled, stopped, failed, started meanwhile, …); decide again on a fresh read. */
  skipped?: true;
  /** The start did not reach the host's agent, or its answer did not come back: the host's link is down (`error` is the link's, naming the host). */
  unreachable?: true;
}

/** A model's host as /v1/models asks about its link (GatewayOptions.hostReach): its id and Host.linkKind. */
export interface HostRef {
  id: string;
  linkKind: "local" | "ssh";
}

/**
 * By host id, true while the host cannot be reached, as the status view decides it (Fleet.hostUnreachable,
 * shared/host-reach.ts): what `synapse status` and the dashboard read to say a model's state is the last known.
 * Decided on the main thread (the worker's bundle holds no fleet code). Passive: asks no link to connect.
 */
export type HostReach = (hosts: readonly HostRef[]) => Promise<Record<string, boolean>>;

/** Why a host's link cannot carry a start now (GatewayFleet.linkDown). */
export interface HostLinkDown {
  /** The link's error; it names the host. */
  error: string;
  /** When the link tries again by itself (epoch ms); null when it does not. */
  nextAttemptAt: number | null;
}

export interface GatewayFleet {
  /**
   * Every registered model. The adapter may answer from a snapshot that it
   * refreshes on fleet events; `fresh` reads the registry now (an unknown
   * name, or a state that would refuse the request, is checked again so).
   * `only` (with `fresh`): the caller needs that model alone, and the adapter
   * may read just its row (the list then holds it, or nothing when it was
   * removed); an adapter that reads them all answers correctly too.
   */
  models(options?: { fresh?: boolean; only?: string }): Promise<readonly GatewayModel[]>;
  /**
   * The list `models()` would answer now without asking anyone (a copy held
   * and still current), or null: then call `models()`. Optional; lets a
   * request that finds its model there go on without waiting a turn.
   */
  modelsNow?(): readonly GatewayModel[] | null;
  /**
   * Starts a model and waits until it is ready or failed (bounded by its readiness deadline), if its row as
   * the start reads it still calls for a start (readinessStep says "start"); else `skipped`. When it does
   * not fit in its host's memory budget, idle on-demand models are stopped first (least recently used,
   * cause `evicted`); when that cannot make room, nothing is stopped and the outcome says why.
   */
  start(modelId: string): Promise<StartOutcome>;
  /** Resolves at the next state change of any model, or after `timeoutMs`. */
  changed(timeoutMs: number): Promise<void>;
  /**
   * Calls `cb` each time the fleet records a model's server as stopping (a
   * stop or restart, stopping.ts); returns the unsubscribe. Optional: without
   * it the requests on a stopping server end when the server does.
   */
  onStopping?(cb: (s: ModelStopping) => void): () => void;
  /**
   * Calls `cb` once as the app begins to shut down (Fleet.onShutdown): the gateway refuses new work and ends
   * the requests that wait, with 503 app_shutting_down; those being answered go on until `drainUntil`. A promise
   * `cb` returns is waited for (until `drainUntil` at most) before the shutdown counts the requests in flight: the
   * worker's bridge resolves it once the requests the worker had begun are counted on the main thread.
   * Returns the unsubscribe. Optional: without it requests meet the shutdown's stops as they meet any other stop.
   */
  onShutdown?(cb: (notice: ShutdownNotice) => void | Promise<unknown>): () => void;
  /**
   * Whether ssh host `hostId`'s link is down: null when it is up or being set up (a start waits for it), else why.
   * A link waiting out its reconnect backoff is asked to try again now (at most once per host every few seconds),
   * and that attempt is waited for up to `timeoutMs`. Optional: without it a request for a model on a host that
   * cannot be reached waits as for any start.
   */
  linkDown?(hostId: string, options: { timeoutMs: number }): Promise<HostLinkDown | null>;
  /** Stops a model with a typed cause (the gateway uses `idle`). */
  stop(modelId: string, cause: StopCause): Promise<void>;
  /**
   * Counts a request in flight on a model of `models()` from now (waiting for a start or a place counts,
   * so the model is not unloaded under it). Synchronous: no await between the idle check and the count.
   * Last use and the idle countdown are left alone until the request is served (InFlightRequest.served).
   */
  beginRequest(modelId: string): InFlightRequest;
  usage(modelId: string): ModelUsage;
  /**
   * When the idle unloader will stop the model (epoch ms; null: not counting
   * down), shown on the dashboard. With `onDue`, the model's idle timer calls
   * it at `at`; a call with another time re-arms it, null clears it, and so
   * does a request's being served (InFlightRequest.served).
   */
  setIdleUnloadAt(modelId: string, at: number | null, onDue?: () => void): void;
  /**
   * A connection to 127.0.0.1:`port` on ssh host `hostId`: a channel on the
   * host's existing ssh connection (no new handshake), opened within
   * `timeoutMs`. Rejects with an Error whose message names the host, and the
   * port when the host's key does not allow it.
   */
  connect?(hostId: string, port: number, options: { timeoutMs: number }): Promise<Duplex>;
}
