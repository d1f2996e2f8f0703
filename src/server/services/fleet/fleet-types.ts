/**
 * The fleet's public shapes: its options, the `Fleet` interface the routers,
 * REST routes, CLI and tests use, and the views it returns.
 */
import type { AgentFeature } from "synapse-host-agent/protocol";
import type { StopCause } from "synapse-host-agent/server-states";
import type { Db } from "~/server/db/client";
import type { Logger } from "~/server/log/logger";
import type { DiscoveryReport } from "~/server/services/registry/discover";
import type { EventBus } from "./events";
import type { HostMemoryView } from "./host-memory";
import type { ModelEstimator } from "../memory/model-estimator";
import type { Estimate } from "../memory/plan";
import type { Model } from "~/generated/prisma/client";
import type { HostMemoryOverview, StartPlanOptions } from "./start-plan";
import type { LinkPool } from "./links";
import type { RestartPolicy } from "./restart-policy";
import type { ServerEntry, ServerResult } from "./server-entry";
import type { ModelRow } from "./server-table";
import type { SettingsView } from "~/server/services/registry/settings";

export type { ServerResult };

/** Who asked for a start, as its event says: a user (dashboard, API, CLI: the default), or a gateway request naming an on-demand model. */
export type StartTrigger = "user" | "request";

export interface FleetOptions {
  db: Db;
  links: LinkPool;
  events: EventBus;
  log: Logger;
  /** The app's own port (no model may take it; discovery needs it). */
  appPort: number;
  now?: () => number;
  restartPolicy?: Partial<RestartPolicy>;
  /** Reconcile tick; 0 turns the tick off (tests drive it by hand). Default 2000. */
  reconcileIntervalMs?: number;
  /** Deadline of a `status` call. Default 10 s. */
  statusTimeoutMs?: number;
  /** A model's memory estimate for start plans; default: from its stored shape (else its weights from the file size). */
  estimator?: ModelEstimator;
}

export interface ServerView {
  modelId: string;
  name: string;
  hostId: string;
  host: string;
  /** The port its server listens on: the running process's (ServerState.port), else the registry's. */
  port: number;
  /** The registry's port when it differs from the running process's (edited while it runs): its next start uses it; null otherwise. */
  pendingPort: number | null;
  enabled: boolean;
  /** "always" | "on-demand" (the gateway starts it on its first request). */
  loadPolicy: string;
  desired: string;
  state: string;
  pid: number | null;
  startedAt: string | null;
  readyAt: string | null;
  stoppedAt: string | null;
  uptimeMs: number | null;
  restarts: number;
  nextRestartAt: string | null;
  lastError: string | null;
  /**
   * How its last process ended: the exit code, or the signal that ended it ("SIGKILL", "SIGTERM"); both null
   * while a process runs (that one has not ended), when nothing ran (a start refused before any spawn) or when
   * the end is not known. lastError, by contrast, stays as history.
   */
  lastExitCode: number | null;
  lastSignal: string | null;
  /** Why it is not running (stopped, exited, failed); null while it runs or before it first ran. */
  cause: StopCause | null;
  gpuBackend: string | null;
  /**
   * The host's link: its kind, state, why it is down, and since when (ISO; null while connected, or before its
   * first connection). While the host is unreachable (shared/host-reach.ts hostUnreachable) `state` is the last
   * known, and `uptimeMs` the uptime when the link was lost.
   */
  link: { kind: string; state: string | null; error: string | null; unreachableSince: string | null };
  /**
   * A Restart by hand was recorded while its host could not be reached, and is made when the host is back
   * (ServerResult.restartPending; shared/host-reach.ts recordedForHost). False otherwise.
   */
  restartPending: boolean;
  /** Gateway requests held for it now (queued, waiting for a start, or being answered); from its ServerEntry. */
  inFlight: number;
  /** Start or end of the last gateway request it served (ISO; a request refused 409/429/503 does not count); null: none since the app started. */
  lastUsedAt: string | null;
  /** When the gateway's idle unloader stops it (ISO); null: not counting down. */
  idleUnloadAt: string | null;
}

export interface AdoptionReport {
  host: string;
  hostId: string;
  adopted: { modelId: string; name: string; pid: number | null; state: string }[];
  error: string | null;
}

/** What the app knows of a host's agent, from its `hello`. */
export interface AgentNote {
  agentVersion: string;
  /** The host's platform as its agent names it (Node's `process.platform`: "darwin", "linux"). */
  platform: string;
  features: string[];
  /** Features this app can use that the agent lacks: update the agent on the host to get them. */
  missing: AgentFeature[];
  /** "update the agent on HOST: …" when features are missing, else null. */
  advice: string | null;
  /**
   * The llama-server the agent resolved at hello (the host's configured binary, LLAMA_SERVER_BIN, PATH,
   * Homebrew's folders or `npm run llama:build`'s cache), its version, or why none was found (then asked
   * again every few seconds, so a binary installed meanwhile shows up: reconcile-loop.ts readHello).
   */
  llamaServer: { path: string | null; version: string | null; error: string | null };
  /** The folders the agent scans for models and serves them from (its hello's `modelRoots`: absolute paths on the host). */
  modelRoots: string[];
}

export interface Fleet {
  /**
   * Every enabled `always` model on every host; hosts in parallel. What does not fit in its host's memory
   * budget is refused (result `memory.verdict` "refused", `error` with the numbers) unless `force`. With
   * wait (default), resolves when each started one is ready or failed.
   */
  startAll(options?: { wait?: boolean; force?: boolean }): Promise<ServerResult[]>;
  /** Every model that is wanted or running. */
  stopAll(): Promise<ServerResult[]>;
  /**
   * Starts one model when it fits in its host's memory budget (else refused with the numbers, unless
   * `force`). `evict` (the gateway's on-demand starts): idle on-demand models are stopped first, least
   * recently used first (cause `evicted`), when that makes room. `startIf` (the gateway's on-demand starts) is
   * asked about the model's row as the start reads it: false, and nothing is done (result `skipped`), so a
   * caller decides a start on the registry as it is now without a read of its own first. `registry` (the
   * gateway's snapshot: every model row with its host and server state, and the global defaults): the memory
   * plan weighs the host's models from it instead of reading them (start-plan.ts reads them all the same when
   * a model of the host runs that it does not list). The model to start is read, unless `row` gives it: its
   * row with host and server state, read by the caller for this very start (the gateway's look at a model
   * whose state changed; it must be as current as a read here would be: it decides `startIf`). `onReady`:
   * called once the agent has answered that the server is ready, "wanted running" is written and no command
   * came since, before the ready state is recorded (the promise resolves after that): the gateway lets the
   * requests waiting for the start go on ~1 ms sooner. Not called for a start that ends otherwise. A
   * disabled model is started too (a way to try it on its own port); its result's `disabled` says that the
   * gateway goes on refusing it (409) until it is enabled, and how to enable it (restart: the same). A start by
   * a request (`trigger` "request") that could not reach the host (result `unreachable`) is no longer wanted:
   * the request that wanted it is answered, so nothing starts it when the link is back (a user's start is, by
   * the reconcile loop); the model stays as it was (an on-demand one idle), its last error the link's.
   */
  start(modelId: string, options?: { wait?: boolean; force?: boolean; evict?: boolean; startIf?: (row: ModelRow) => boolean; registry?: StartPlanOptions["registry"]; row?: ModelRow; onReady?: (result: ServerResult) => void; trigger?: StartTrigger }): Promise<ServerResult>;
  /** `cause` (default "requested") is recorded as the stop's cause, e.g. "idle" when the gateway unloads an on-demand model. */
  stop(modelId: string, options?: { cause?: StopCause }): Promise<ServerResult>;
  /**
   * Stops the model's server and starts it with its current settings. A model running on another port than
   * the registry's, on this machine, whose registry port another program holds now is not stopped: the result
   * is its running server (state, pid, the port it runs on) with `error` naming the holder and what to do.
   * Its host cannot be reached now: nothing is stopped; the restart is recorded and made once the host is back
   * (the result's `restartPending`, its state and pid the last known).
   */
  restart(modelId: string, options?: { wait?: boolean; force?: boolean }): Promise<ServerResult>;
  status(): Promise<ServerView[]>;
  /**
   * True while the host cannot be reached, as the status view decides it (shared/host-reach.ts hostUnreachable
   * of ServerView.link): passive, asks no link to connect. /v1/models reads it to say a model's state is the
   * last known (GatewayOptions.hostReach). `linkKind`: Host.linkKind ("local" is always reachable).
   */
  hostUnreachable(host: { id: string; linkKind: string }): boolean;
  /**
   * A server's last log lines. `seq`: the number of the last line the host
   * sent as a live event before these; live lines with a greater seq are not
   * among them (null from an agent that does not number its lines).
   * `search`: the last `lines` lines of the whole log (rotated copy and
   * current file) that contain that text, case ignored (LogsResult.search).
   */
  logs(modelId: string, lines?: number, options?: { search?: string }): Promise<LogsResult>;
  discover(hostId: string): Promise<DiscoveryReport>;
  /** Asks every host for its servers and adopts the live ones (app start). Waits up to timeoutMs for links to connect. */
  adopt(options?: { timeoutMs?: number }): Promise<AdoptionReport[]>;
  /** One reconcile pass of a host (or every host). */
  reconcile(hostId?: string): Promise<void>;
  /**
   * The model's ServerEntry, loaded from its record: the one object per model that the gateway shares
   * (inFlight, lastUsedAt, idleTimer; state and op to read). Throws NOT_FOUND for an unknown model.
   */
  entry(modelId: string): Promise<ServerEntry>;
  /**
   * The model's ServerEntry now, made on first use, without waiting for its
   * record (the gateway counts requests on it in the same tick as it checks
   * the idle unload). Its recorded fields (state, pid) may not be loaded yet:
   * read those through `entry`. The model is not checked against the registry.
   */
  liveEntry(model: { id: string; hostId: string; name: string }): ServerEntry;
  /**
   * A failed model whose saved settings (its row, its host's paths, the global defaults `settings`) now make a
   * spec other than the one its failed start was given (settings-hash.ts): a saved fix. False when it is not
   * failed, or its row records no failed start's settings. Pure; reads nothing.
   */
  changedSinceFailure(row: ModelRow, settings: SettingsView): boolean;
  /** The host's agent as its last `hello` described it; null before the fleet reached it. */
  agent(hostId: string): AgentNote | null;
  /**
   * Each host's memory bar: budget, what runs, what START ALL ENABLED would add and refuse; `link` as ServerView's:
   * while the host cannot be reached (shared/host-reach.ts hostUnreachable), what runs is by the last known states.
   */
  memoryOverview(): Promise<(HostMemoryOverview & { link: ServerView["link"] })[]>;
  /** A model row's estimate (saved, or with unsaved form values over it) under the global defaults. */
  estimate(model: Model): Promise<Estimate>;
  /** The host's memory budget and its agent's last reading, and its link as ServerView's (while the host cannot be reached, the reading is the last contact's); `refresh` reads the agent now. NOT_FOUND for an unknown host. */
  hostMemory(hostId: string, options?: { refresh?: boolean }): Promise<HostMemoryView & { link: ServerView["link"] }>;
  /**
   * Stops reacting (timers, tick, crash handling); with stopServers, stops every managed server through its
   * agent. Returns the servers this stop ended (those that ran, or were starting), each with its state after
   * it (`stopped`, or what still runs with the agent's reason as `error`); none that were already stopped,
   * exited or failed. Empty without stopServers. With it, every model of a reachable host is left not wanted
   * (the next start leaves it stopped); one that had crashed or failed is recorded `stopped` with cause
   * `shutdown` and one event saying what was found (a restart cancelled, or nothing running), its last error
   * kept, as a user's stop of it does (Operations.issueStop). `deadlineMs`: for the whole stop (ms, default
   * 30 000), the drain included; a host whose link is down, or whose stop fails, is logged and left as it is.
   * `drainMs`: how long it first waits for the gateway's requests in flight to end (ms, default
   * SHUTDOWN_DRAIN_MS, at most a third of `deadlineMs`; onShutdown).
   */
  shutdown(options: { stopServers: boolean; deadlineMs?: number; drainMs?: number }): Promise<ServerResult[]>;
  /**
   * Ends shutdown()'s wait for the gateway's requests in flight now (a second Ctrl-C / SIGTERM: boot.ts); the
   * shutdown goes on with its stops. True when a wait was under way; false otherwise (nothing to end).
   */
  endShutdownWait(): boolean;
  /**
   * The app's shutdown as it goes, for the pages (servers.shutdown): null until shutdown() begins; then what it
   * does (ShutdownView). Read while the app still answers: during the wait for requests and the stops.
   */
  shutdownState(): ShutdownView | null;
  /**
   * Calls `cb` once, as shutdown() begins and before it stops anything: the gateway refuses new work and
   * ends the requests that wait (503 app_shutting_down). shutdown() then waits for the requests in flight
   * (ServerEntry.inFlight, every model) to end, until `notice.drainUntil`, before it stops the servers or
   * returns. A promise `cb` returns is waited for (until `notice.drainUntil` at most) before that count is
   * first read: the gateway's worker tells the requests it began in batches (fleet-host.ts). Added once the
   * shutdown began (a gateway worker started again meanwhile), `cb` is called at once (in a microtask) with the
   * notice given. Returns the unsubscribe. A throwing (or rejecting) listener is logged; the others are still called.
   */
  onShutdown(cb: (notice: ShutdownNotice) => void | Promise<unknown>): () => void;
  /** Waits for pending records; after this nothing is written. Idempotent. */
  close(): Promise<void>;
}

/** What the app's shutdown tells the gateway as it begins (Fleet.onShutdown). */
export interface ShutdownNotice {
  /** true: the app stops every managed server before it exits; false: it leaves them running (SYNAPSE_LEAVE_SERVERS_RUNNING), re-adopted at its next start. */
  stopServers: boolean;
  /** Epoch ms until which shutdown() waits for requests in flight to end; after it, the servers are stopped (or the app exits) under any still running. */
  drainUntil: number;
}

/** The app's shutdown as the pages show it (Fleet.shutdownState). */
export interface ShutdownView {
  /** As ShutdownNotice.stopServers. */
  stopServers: boolean;
  /** When it began (ISO). */
  began: string;
  /** Until when it waits for the gateway's requests in flight (ISO); as ShutdownNotice.drainUntil. */
  drainUntil: string;
  /** `waiting`: for the requests in flight (new ones are refused); `stopping`: the servers; `exiting`: leaving them running. */
  phase: "waiting" | "stopping" | "exiting";
  /** The gateway's requests in flight now (ServerEntry.inFlight, every model). */
  requestsInFlight: number;
}

/** A server's log lines (Fleet.logs). */
export interface LogsResult {
  modelId: string;
  name: string;
  lines: string[];
  logPath: string | null;
  seq: number | null;
  /**
   * With a search: what was searched. `matches`: lines that matched in all (`lines` holds the last of them);
   * `searchedBytes` (null when not known) and `searchedAll` (false: only the end of a long file, or only the
   * last 5000 lines); `note`: why the search covered less than the whole log (an agent older than
   * "log-search" is asked for its last 5000 lines, searched here), else null.
   */
  search?: { text: string; matches: number; searchedBytes: number | null; searchedAll: boolean; note: string | null };
}
