/**
 * The local link: the agent runs in this process (the embedded, no-Docker
 * mode). Calls, their results and state events are JSON round-tripped and
 * parsed with the same schemas as on the wire, so code written against the
 * local link behaves the same over ssh (no Dates, no shared object identity,
 * same defaults, same error shapes).
 *
 * Log events are the exception: a llama-server writes several lines per
 * request and each is an event, so the round trip and the schema's parse
 * (~29 µs a line under load) were most of what the link cost the gateway.
 * A log event is made by the agent in this process from strings and a
 * number (supervisor.ts), so a field-by-field copy gives the listeners the
 * same value the wire would, without sharing the agent's object.
 */
import { createHostAgent, type HostAgentOptions } from "../agent.ts";
import { AgentError, agentEventSchema, type AgentApi, type AgentEvent, type Method, type Params, type Result } from "../protocol.ts";
import { stderrLinkLog, type HostLink, type LinkLog, type LinkState, type LinkStateChange } from "./types.ts";
import { DEFAULT_CALL_TIMEOUT_MS, MAX_REQUEST_LINE_BYTES, closedError, parseResult, toWireError, withDeadline } from "./wire.ts";

export type LocalLinkOptions = {
  /** The host's name in messages (default "local"). */
  name?: string;
  callTimeoutMs?: number;
  log?: LinkLog;
} & (
  | { /** Create and own an agent from this config; `close()` closes it (servers keep running). */ agentConfig: HostAgentOptions; agent?: never }
  | { /** Use an agent someone else owns; `close()` leaves it alone. */ agent: AgentApi; agentConfig?: never }
);

export function createLocalLink(options: LocalLinkOptions): HostLink {
  return new LocalLink(options);
}

function roundTrip(value: unknown): unknown {
  const text = JSON.stringify(value);
  return text === undefined ? undefined : JSON.parse(text);
}

type LogEvent = Extract<AgentEvent, { kind: "log" }>;

/** A log event as the wire would give it: a new object; `seq` only when the agent set one. */
function copyLogEvent(e: LogEvent): LogEvent {
  const copy: LogEvent = { type: "event", kind: "log", at: e.at, id: e.id, line: e.line };
  if (e.seq !== undefined) copy.seq = e.seq;
  return copy;
}

class LocalLink implements HostLink {
  readonly kind = "local" as const;
  readonly host: string;
  private current: LinkState = "connected";
  private readonly agent: AgentApi;
  private readonly owned: { close(): void | Promise<void> } | null;
  private readonly timeoutMs: number;
  private readonly log: LinkLog;
  private readonly stateListeners = new Set<(c: LinkStateChange) => void>();
  private readonly eventListeners = new Set<(e: AgentEvent) => void>();
  private readonly pending = new Set<(err: AgentError) => void>();
  private readonly unsubscribeAgent: () => void;

  constructor(options: LocalLinkOptions) {
    this.host = options.name ?? "local";
    this.timeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.log = options.log ?? stderrLinkLog;
    if (options.agentConfig) {
      const agent = createHostAgent(options.agentConfig);
      this.agent = agent;
      this.owned = agent;
    } else {
      this.agent = options.agent;
      this.owned = null;
    }
    this.unsubscribeAgent = this.agent.onEvent((event) => this.forward(event));
  }

  get state(): LinkState {
    return this.current;
  }

  onStateChange(listener: (c: LinkStateChange) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  onEvent(listener: (e: AgentEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  call<M extends Method>(method: M, params: Params<M>, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Result<M>> {
    if (this.current === "closed") return Promise.reject(closedError(this.host));
    let wireParams: unknown;
    try {
      const text = JSON.stringify(params ?? {});
      if (Buffer.byteLength(text) > MAX_REQUEST_LINE_BYTES) throw new Error(`larger than ${MAX_REQUEST_LINE_BYTES} bytes`);
      wireParams = JSON.parse(text);
    } catch (err) {
      return Promise.reject(new AgentError({ code: "BAD_REQUEST", message: `params for ${method} cannot be sent: ${String(err)}` }, { cause: err }));
    }
    const controller = new AbortController();
    const body = new Promise<unknown>((resolve, reject) => {
      const onClose = (err: AgentError) => reject(err);
      this.pending.add(onClose);
      this.agent
        .call(method, wireParams as Params<M>, { signal: controller.signal })
        .then(
          (result) => resolve(roundTrip(result)),
          // Errors cross as their wire shape, exactly as the ssh link rebuilds them.
          (err: unknown) => reject(new AgentError(roundTrip(toWireError(err)) as ReturnType<typeof toWireError>, { cause: err })),
        )
        .finally(() => this.pending.delete(onClose));
    });
    return withDeadline(body, {
      host: this.host,
      method,
      timeoutMs: options?.timeoutMs ?? this.timeoutMs,
      signal: options?.signal,
      // Unlike ssh, giving up can tell the agent: it may stop waiting early.
      onGiveUp: () => controller.abort(),
    }).then((raw) => parseResult(this.host, method, raw));
  }

  async close(): Promise<void> {
    if (this.current === "closed") return;
    const previous = this.current;
    this.current = "closed";
    this.unsubscribeAgent();
    const err = closedError(this.host);
    for (const reject of this.pending) reject(err);
    this.pending.clear();
    await this.owned?.close();
    for (const listener of this.stateListeners) {
      try {
        listener({ host: this.host, state: "closed", previous });
      } catch (e) {
        this.log("error", "a state listener threw", { host: this.host, error: String(e) });
      }
    }
  }

  private forward(event: AgentEvent): void {
    let copy: AgentEvent;
    if (event.kind === "log") {
      copy = copyLogEvent(event);
    } else {
      const parsed = agentEventSchema.safeParse(roundTrip(event));
      if (!parsed.success) {
        this.log("warn", "dropped a malformed event from the local agent", { host: this.host });
        return;
      }
      copy = parsed.data;
    }
    for (const listener of this.eventListeners) {
      try {
        listener(copy);
      } catch (err) {
        this.log("error", "an event listener threw", { host: this.host, error: String(err) });
      }
    }
  }
}
