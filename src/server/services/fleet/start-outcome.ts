/**
 * A start as data: the agent's `start` call resolves to an outcome with the
 * server's status (`ready`, `failed`, …), never an exception to dig the
 * status out of; and what the fleet does with each outcome, as a pure
 * function. Also the one mapping of agent and link errors to ServiceError.
 */
import { AgentError, serverStatusSchema, type ServerSpec, type ServerStatus } from "synapse-host-agent/protocol";
import type { HostLink } from "synapse-host-agent/link";
import { errorMessage } from "synapse-host-agent/error-text";
import { z } from "zod";
import { ServiceError, type ServiceErrorCode } from "../errors";

/** The holder of a port as the agent's start refusal carries it (host-agent supervisor/port.ts PortHolder). */
const portHolderSchema = z.object({ port: z.number().int(), pid: z.number().int().nullable(), command: z.string().nullable() });

/**
 * What to do about a start the agent refused because the model's port is
 * held: the agent says who holds it ("port 8080 is held by pid 4242
 * (llama-server)"), the app says what to change (another program on the
 * Mac often holds a popular port such as 8080, which discovery numbers from),
 * and that the model then waits for a start: a start that could not be made
 * leaves it `failed`, not retried (reconciler.ts), so freeing the port alone
 * starts nothing.
 */
export const PORT_HELD_ADVICE = "stop that process, or give this model a free port (its Edit form, or models.update with port), then start it again";

/** The same for a restart the fleet did not begin because its next port is held: the running server was left running (fleet.ts restart). */
export const RESTART_PORT_HELD_ADVICE = "stop that process, or give this model a free port (its Edit form, or models.update with port), then restart it";

export type StartOutcome =
  /** Ready: the agent started it, or it already ran with this spec (`status.state` is then `unhealthy` when its health fails). */
  | { outcome: "ready"; status: ServerStatus }
  /** It ended while loading, or missed its readiness deadline: `status.state` is `failed` (or `stopped` when a stop cut it short). */
  | { outcome: "failed"; status: ServerStatus; error: string }
  /** It runs with an older spec and keeps running; a restart applies the new one. */
  | { outcome: "conflict"; status: ServerStatus; error: string }
  /**
   * The link, not the server: down or timed out. The reconciler starts it once the host is back; a restart after a
   * crash is planned again with its due time recorded (restarts.afterUnreachable), which the reconciler resumes.
   */
  | { outcome: "unreachable"; error: string }
  /**
   * The agent did not answer within the call's deadline while the link stayed up: not an unreachable host but the
   * start's own failure (the agent stuck, or its host too slow to spawn within the readiness deadline). Failed, as a
   * refusal is; should the server come up after all, the agent's report of it is recorded then.
   */
  | { outcome: "noAnswer"; error: string }
  /** The agent refused before spawning (bad spec, no llama-server, port held, …). */
  | { outcome: "refused"; error: string };

const AGENT_TO_SERVICE: Record<string, ServiceErrorCode> = {
  BAD_REQUEST: "BAD_REQUEST",
  NOT_FOUND: "NOT_FOUND",
  CONFLICT: "CONFLICT",
  FAILED: "FAILED",
  UNAVAILABLE: "UNAVAILABLE",
  TIMEOUT: "UNAVAILABLE",
  INTERNAL: "INTERNAL",
};

/** An agent or link error as the one error type services throw. */
export function toServiceError(err: unknown, context?: string): ServiceError {
  if (err instanceof ServiceError) return err;
  const text = context ? `${context}: ${errorMessage(err)}` : errorMessage(err);
  if (err instanceof AgentError) {
    return new ServiceError(AGENT_TO_SERVICE[err.code] ?? "INTERNAL", text, { cause: err, ...(err.issues ? { issues: err.issues } : {}), ...(err.data !== undefined ? { data: err.data } : {}) });
  }
  return new ServiceError("INTERNAL", text, { cause: err });
}

/** The server status an agent error carries (a start that failed while loading), if any. */
export function statusFromError(err: unknown): ServerStatus | null {
  if (!(err instanceof AgentError) || err.data === undefined) return null;
  const r = serverStatusSchema.safeParse(err.data);
  return r.success ? r.data : null;
}

/**
 * What a rejected start call means. `linkUp`: the host's link was connected when the call gave up. A timeout then
 * is the start's own (noAnswer, `noAnswerText` says it in full); a timeout with the link down, or a link error, is
 * the host's (unreachable). Without `linkUp`, a timeout counts as the host's.
 */
export function outcomeOfError(err: unknown, options: { linkUp?: boolean; noAnswerText?: string } = {}): StartOutcome {
  const error = errorMessage(err);
  const status = statusFromError(err);
  const code = err instanceof AgentError ? err.code : "INTERNAL";
  if (status && code === "CONFLICT") return { outcome: "conflict", status, error };
  if (status) return { outcome: "failed", status, error };
  if (code === "TIMEOUT" && options.linkUp) return { outcome: "noAnswer", error: options.noAnswerText ?? error };
  if (code === "UNAVAILABLE" || code === "TIMEOUT") return { outcome: "unreachable", error };
  if (code === "CONFLICT" && portHolderSchema.safeParse((err as AgentError).data).success) return { outcome: "refused", error: `${error}; ${PORT_HELD_ADVICE}` };
  return { outcome: "refused", error };
}

/**
 * What a start that the agent did not answer while its link stayed up says (outcome noAnswer): "cannot start
 * alpha: the agent on host mac did not answer the start within 45 s (its readiness deadline, 30 s, and a margin)
 * while the link stayed up; …". `timeoutMs`, `readinessDeadlineMs`: the call's deadline and the spec's (ms).
 */
export function noAnswerText(name: string, host: string, timeoutMs: number, readinessDeadlineMs: number): string {
  const s = (ms: number) => `${Math.round(ms / 1000)} s`;
  return `cannot start ${name}: the agent on host ${host} did not answer the start within ${s(timeoutMs)} (its readiness deadline, ${s(readinessDeadlineMs)}, and a margin) while the link stayed up; the agent may be stuck or the host overloaded: see the agent's log on ${host}, then start it again (should the server come up meanwhile, its state shows it)`;
}

/**
 * Calls the agent's `start`; resolves with the outcome, never rejects. `timeoutMs`: the call's deadline. A call
 * that times out while the link is still connected is noAnswer (the start's own failure), not unreachable.
 */
export function callStart(link: HostLink, spec: ServerSpec, timeoutMs: number): Promise<StartOutcome> {
  return link.call("start", { spec }, { timeoutMs }).then(
    (status): StartOutcome => ({ outcome: "ready", status }),
    (err: unknown) => outcomeOfError(err, { linkUp: link.state === "connected", noAnswerText: noAnswerText(spec.id, link.host, timeoutMs, spec.readinessDeadlineMs) }),
  );
}

/** One step the fleet takes after a start's outcome. */
export type StartStep =
  /** Record the status the agent sent (as a snapshot: older than events already recorded, maybe). */
  | { kind: "record"; status: ServerStatus }
  /** Could not start: the model is `failed` with this error (and an error event). */
  | { kind: "markFailed"; error: string }
  /** The error goes on the row, the state stays (a link problem). */
  | { kind: "noteError"; error: string }
  /** A restart's start that could not reach its host: planned again (restarts.afterUnreachable). */
  | { kind: "restartLater"; error: string }
  /** A restart after a crash that did not start counts as another crash: the restart policy decides. */
  | { kind: "crash"; why: string };

export interface StartDecision {
  steps: StartStep[];
  /**
   * What the caller of the start is told: state, pid, error (state null: the entry's recorded state); `port`, the
   * port of the process the agent reported (a server already running keeps the port it was started on, whatever
   * the registry says since), null when it reported none (the registry's then); `unreachable`, the start did not
   * reach the agent, or its answer did not come back (the link: down, dropped or timed out; `error` says which).
   */
  result: { state: string | null; pid: number | null | "recorded"; error: string | null; port: number | null; unreachable?: true };
}

/**
 * What to do with a start's outcome. `current`: no newer command (stop,
 * start) was accepted for the model since this start was issued; a late
 * result of an older start records what the agent says, and nothing more
 * (no failure, no error on the row, no crash): the newer command owns the
 * model. `restart`: the start was a restart after a crash.
 */
export function decideStartOutcome(o: StartOutcome, opts: { current: boolean; restart: boolean }): StartDecision {
  const steps: StartStep[] = [];
  switch (o.outcome) {
    case "ready":
      return { steps: [{ kind: "record", status: o.status }], result: { state: o.status.state, pid: o.status.pid, error: null, port: o.status.port } };
    case "failed":
      steps.push({ kind: "record", status: o.status });
      if (opts.current && opts.restart && o.status.state === "failed") steps.push({ kind: "crash", why: o.status.reason ?? "failed to start" });
      return { steps, result: { state: o.status.state, pid: o.status.state === "failed" ? null : o.status.pid, error: o.error, port: o.status.port } };
    case "conflict":
      return { steps: [{ kind: "record", status: o.status }], result: { state: o.status.state, pid: o.status.pid, error: `${o.error}; restart it to apply the current settings`, port: o.status.port } };
    case "unreachable":
      // A restart is planned again (not counted as a crash); any other start leaves it to the reconcile loop.
      if (opts.current) steps.push(opts.restart ? { kind: "restartLater", error: o.error } : { kind: "noteError", error: o.error });
      return { steps, result: { state: null, pid: "recorded", error: o.error, port: null, unreachable: true } };
    case "noAnswer":
    case "refused":
      if (!opts.current) return { steps, result: { state: null, pid: "recorded", error: o.error, port: null } };
      steps.push({ kind: "markFailed", error: o.error });
      if (opts.restart) steps.push({ kind: "crash", why: o.error });
      return { steps, result: { state: "failed", pid: null, error: o.error, port: null } };
  }
}
