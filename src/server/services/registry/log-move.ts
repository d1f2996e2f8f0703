/**
 * A renamed model's log follows it. A model's server id on its host is its
 * registry name, and the agent keeps each server's llama-server log in a file
 * named after that id; after a rename the app reads the log under the new
 * name. So when a rename is saved the app asks the host's agent to move the
 * log files to the new name (`renameLogs`, agents with "rename-logs").
 *
 * Why a move on the host, and not the app reading under old names too: the
 * file on the host then carries the name the user knows the model by (who
 * looks in the agent's logs folder on the Mac finds it), `servers.logs` and
 * the live log stream stay one file per model with no name history to keep,
 * and the next run appends to the same file.
 *
 * Order: the registry row is saved first, then the log is moved. A rename the
 * registry refuses (a name taken, the model running) then never touches the
 * log; and a move that cannot be made (host unreachable, an older agent, a log
 * already under the new name) leaves the log whole under its old name, with
 * an event (kind "error", after the rename's own) and the saved model's
 * `logMove` saying so and what to do. Moving first would need a move back
 * whenever the registry write failed after it, and a failed move back is a
 * log under a name no model has. The rename's own event is recorded before the
 * move, so the gateway reads the renamed model at once however slow the host.
 */
import { errorMessage } from "synapse-host-agent/error-text";
import type { LinkPool, PoolHost } from "~/server/services/fleet/links";
import { linkWithFeature } from "./agent-with-feature";

export interface LogMove {
  /** True when the log is under the new name now (or there was none to move). */
  moved: boolean;
  /** For people: where the log is and, when it stayed, why and what to do ("update the agent on HOST"). */
  note: string;
}

/** Moves `from`'s log to `to` on `host`; resolves with the outcome, never rejects. */
export type LogMover = (host: PoolHost, from: string, to: string) => Promise<LogMove>;

const DEFAULT_TIMEOUT_MS = 5_000;

/** A LogMover that asks through the app's host links; opening the link and each call bounded by `timeoutMs` (default 5 s). */
export function agentLogMover(links: Pick<LinkPool, "get">, options: { timeoutMs?: number } = {}): LogMover {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return async (host, from, to) => {
    const stayed = (why: string): LogMove => ({ moved: false, note: `its log stayed under ${from} on host ${host.name}: ${why}` });
    let link;
    try {
      link = await linkWithFeature(links, host, "rename-logs", timeoutMs);
      if (!link) return stayed(`the agent there cannot move logs; update the agent on ${host.name}`);
    } catch (err) {
      return stayed(`the host could not be reached (${errorMessage(err)})`);
    }
    try {
      const r = await link.call("renameLogs", { from, to }, { timeoutMs });
      return { moved: true, note: r.moved.length > 0 ? `its log moved to ${r.moved[0]} on host ${host.name}` : `it had no log on host ${host.name} yet` };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // The agent's own refusal says what is in the way (a log under the new name, the server running).
      if (code === "CONFLICT" || code === "BAD_REQUEST") return stayed(errorMessage(err));
      // No answer (a deadline, the link dropped): the agent may still have made the move. The log is whole either way.
      return { moved: false, note: `its log is under ${from} or ${to} on host ${host.name}: the agent did not answer the move (${errorMessage(err)})` };
    }
  };
}
