/**
 * A model's server going away under the requests it answers: a stop or a
 * restart of the model (any cause: requested, restart, host-stop, shutdown),
 * or its end without one (a crash: the `exited` or `failed` state event).
 *
 * llama-server, sent SIGTERM, ends its task loop and then waits for the
 * connections of the requests it was answering to close before it exits:
 * a stream in progress kept it alive until the agent's SIGKILL, a stop
 * grace later (10 s by default), and its client saw the stream stall, then
 * break with no word of why. So the gateway ends those requests itself as
 * soon as the fleet records the model `stopping` (the state event the
 * agent's report makes), telling each client why (raw-upstream.ts
 * `onEnding`).
 *
 * A stop on its host (another agent: stop-metal-servers) shows no `stopping`:
 * the agent that runs the server sees only its end, a `stopped` straight
 * from `ready`, which is then the notice (the server's second SIGTERM, 2 s
 * on, ends it while the gateway's streams are open).
 *
 * A server that crashes drops its connections itself; raw-upstream waits a
 * moment for the notice of a dropped request (ENDING_NOTICE_WAIT_MS), and
 * the crash's state event is that notice: the client is told the server
 * exited and why ("killed by SIGSEGV"), not only that its answer broke.
 */
import { GatewayError } from "./openai-error";

/** A model whose server is stopping, or has ended, as the fleet's state event says it. */
export interface ModelStopping {
  modelId: string;
  /** The event's words after the model's name: "stopping (stopped on request)", "exited (crashed: killed by SIGSEGV)". */
  why: string;
  /** True when the server has already ended (`exited`, `failed`: a crash); absent for a stop that began. */
  ended?: boolean;
  /**
   * True when it is not the server that went away but its host's link (linkLostOf): the gateway can no longer
   * reach it, and it may still run there. `why` is then the host event's words ("link disconnected (…)").
   */
  unreachable?: boolean;
}

/** The parts of a recorded fleet event (services/fleet/events.ts RecordedEvent) this reads. */
export interface StateEventLike {
  kind: string;
  state: string | null;
  modelId: string | null;
  /** A host event's host (linkLostOf). */
  hostId?: string | null;
  message: string;
  /** The event's data: a state event's `previous` state (report-decision.ts) tells a stop on the host. */
  data?: unknown;
}

/** The state a state event's data says the server was in before (report-decision.ts `previous`), if any. */
function previousOf(data: unknown): unknown {
  return typeof data === "object" && data !== null ? (data as { previous?: unknown }).previous : undefined;
}

/**
 * The model whose server a fleet event says is stopping or has ended, or null for any other event: `stopping`;
 * `exited` or `failed` (a crash: `ended`); `stopped` straight from a running state, which is a stop on its host
 * (another agent, e.g. stop-metal-servers: the agent that runs it sees only the end, no `stopping` before it).
 */
export function stoppingOf(event: StateEventLike): ModelStopping | null {
  const { state, modelId } = event;
  if (event.kind !== "state" || modelId === null) return null;
  const onHost = state === "stopped" && ["ready", "unhealthy"].includes(previousOf(event.data) as string);
  if (state !== "stopping" && state !== "exited" && state !== "failed" && !onHost) return null;
  const colon = event.message.indexOf(": ");
  const why = colon === -1 ? state : event.message.slice(colon + 2);
  return state === "stopping" || onHost ? { modelId, why } : { modelId, why, ended: true };
}

/**
 * The host whose link a fleet event says was lost, with the event's words after the host's name ("link
 * disconnected (…)"), or null for any other event: a `host` event (reconcile-loop.ts) from `connected` to
 * another state (or from connecting when `data.connectionLost`: a connection that had been up ended while
 * its agent was being started again), but for an agent started again on a connection that stayed up
 * (`data.agentRestart`: the channels carry on). The requests being answered by that host's models through its link (channels on its ssh
 * connection) broke with it: each client is told so (linkLostUnderRequest), not only that its answer broke.
 */
export function linkLostOf(event: StateEventLike): { hostId: string; why: string } | null {
  if (event.kind !== "host" || !event.hostId || event.state === "connected") return null;
  const data = typeof event.data === "object" && event.data !== null ? (event.data as { agentRestart?: unknown; connectionLost?: unknown }) : {};
  // The agent started again on a connection that stayed up: the channels to the models carry on.
  if (data.agentRestart === true) return null;
  // From connected, or a connection that had been up ending while the link was starting its agent again on it.
  if (previousOf(event.data) !== "connected" && data.connectionLost !== true) return null;
  const colon = event.message.indexOf(": ");
  return { hostId: event.hostId, why: colon === -1 ? `link ${event.state ?? "lost"}` : event.message.slice(colon + 2) };
}

/**
 * What the client of a request being answered by a model on a host whose link was lost is told (ModelStopping
 * with `unreachable`): 502 host_unreachable, as a request that cannot reach the host is (raw-upstream.ts),
 * with Retry-After 2 s; the server may still run on the host, and the link reconnects by itself.
 */
export function linkLostUnderRequest(name: string, host: string, why: string): GatewayError {
  return new GatewayError(502, "server_error", "host_unreachable", `model ${JSON.stringify(name)} (host ${host}): the gateway lost the host's link while the request was answered (${why}); the request was ended; sent again, it is answered once the link is back`, { retryAfterS: 2 });
}

/**
 * What the client of a request that was being answered is told. 503 with
 * Retry-After 1 s: a client that sends it again (OpenAI's do, for an answer
 * that had not begun) waits for a restart to end and is served, or is told
 * 409 that the model was stopped and how to start it. `ended` (a crash):
 * `model_server_exited`, the same way, for a request it was answering or
 * one whose connection it refused as it went; a client that sends it again
 * is told when the restart the model's policy makes is due (503
 * model_restarting, Retry-After), or why there is none.
 */
export function stoppedUnderRequest(name: string, why: string, ended = false): GatewayError {
  if (ended) {
    return new GatewayError(503, "service_unavailable", "model_server_exited", `model ${JSON.stringify(name)}: its server ${why}; the request was ended with it; sent again, it is told when the model restarts (503, Retry-After) and answered once it runs, or told why not`, { retryAfterS: 1 });
  }
  return new GatewayError(503, "service_unavailable", "model_stopping", `model ${JSON.stringify(name)} is ${why}: the request was ended with its server; sent again, it is answered once the model runs, or told why not`, { retryAfterS: 1 });
}

/**
 * What a request is told when the app's shutdown (Fleet.onShutdown) meets it: 503 app_shutting_down. `ended`:
 * it was being answered and had not ended when the shutdown's wait for requests in flight did (`waitedS`), or
 * its server stopped or ended under it before then (a ModelStopping: a crash, a stop of the shutdown's once no
 * request was counted); otherwise it was new, or waiting for a place or a start, and was not sent to the model.
 * With the servers left running (SYNAPSE_LEAVE_SERVERS_RUNNING) the app's next start takes them over: Retry-After
 * 5 s. With the servers stopped nothing comes back by itself (the next start leaves them stopped): x-should-retry
 * false.
 */
export function appShuttingDown(name: string, notice: { stopServers: boolean }, ended?: { waitedS: number } | ModelStopping): GatewayError {
  const model = JSON.stringify(name);
  const what = !ended
    ? `the app is shutting down: the request for model ${model} was not sent to it`
    : "waitedS" in ended
      ? `model ${model}: the app is shutting down and the request had not ended ${ended.waitedS} s after, the longest the app waits for requests in flight; it was ended`
      : ended.ended
        ? `model ${model}: its server ${ended.why} while the app is shutting down; the request was ended with it`
        : `model ${model} is ${ended.why} while the app is shutting down: the request was ended with its server`;
  if (notice.stopServers) {
    return new GatewayError(503, "service_unavailable", "app_shutting_down", `${what}. The app stops its model servers and exits; at its next start, models with load policy "always" stay stopped until started (START ALL ENABLED), on-demand ones start on a request`, { shouldRetry: false });
  }
  return new GatewayError(503, "service_unavailable", "app_shutting_down", `${what}. Its model servers keep running and its next start takes them over: send the request again then`, { retryAfterS: 5 });
}
