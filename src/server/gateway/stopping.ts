/**
 * A model's server going away under the requests it answers: a stop or a
 * restart of the model (any cause: requested, restart, host-stop, shutdown).
 *
 * llama-server, sent SIGTERM, ends its task loop and then waits for the
 * connections of the requests it was answering to close before it exits:
 * a stream in progress kept it alive until the agent's SIGKILL, a stop
 * grace later (10 s by default), and its client saw the stream stall, then
 * break with no word of why. So the gateway ends those requests itself as
 * soon as the fleet records the model `stopping` (the state event the
 * agent's report makes), telling each client why (raw-upstream.ts
 * `onEnding`).
 */
import { GatewayError } from "./openai-error";

/** A model whose server is stopping, as the fleet's state event says it. */
export interface ModelStopping {
  modelId: string;
  /** The event's words after the model's name: "stopping (stopped on request)". */
  why: string;
}

/** The parts of a recorded fleet event (services/fleet/events.ts RecordedEvent) this reads. */
export interface StateEventLike {
  kind: string;
  state: string | null;
  modelId: string | null;
  message: string;
}

/** The model whose server a fleet event says is stopping, or null for any other event. */
export function stoppingOf(event: StateEventLike): ModelStopping | null {
  if (event.kind !== "state" || event.state !== "stopping" || event.modelId === null) return null;
  const colon = event.message.indexOf(": ");
  return { modelId: event.modelId, why: colon === -1 ? "stopping" : event.message.slice(colon + 2) };
}

/**
 * What the client of a request that was being answered is told. 503 with
 * Retry-After 1 s: a client that sends it again (OpenAI's do, for an answer
 * that had not begun) waits for a restart to end and is served, or is told
 * 409 that the model was stopped and how to start it.
 */
export function stoppedUnderRequest(name: string, why: string): GatewayError {
  return new GatewayError(503, "service_unavailable", "model_stopping", `model ${JSON.stringify(name)} is ${why}: the request was ended with its server; sent again, it is answered once the model runs, or told why not`, { retryAfterS: 1 });
}
