/**
 * The app's decisions about a model's server, written into that server's log on its host as lines of their
 * own (the agent's `logNote`, feature log-note): after a crash, the restart and when it comes, or why there
 * is none; a pending restart that a stop cancelled. A log read on its own (`tail -F` on the Mac, a copy sent
 * with a bug report) then says what followed each run's end, as the app's events do.
 */
import { errorMessage } from "synapse-host-agent/error-text";
import { APP_NOTE_MAX_CHARS } from "synapse-host-agent/protocol";
import type { FleetContext } from "./context";
import type { ServerEntry } from "./server-entry";

/** Writes `text` into model `e`'s server log on its host; never throws, never waited for. */
export type NoteInLog = (e: ServerEntry, text: string) => void;

/**
 * A NoteInLog over `ctx`'s links. `features(hostId)`: the host agent's hello features (null before its hello
 * was read). Only an agent with log-note over a connected link is asked: with an older one the decision is in
 * the app's events alone (the hosts page says to update it), and with a link that is down it is not written.
 * The call goes out before any later call to that agent (its start of the restart comes after it in the log); a
 * note that could not be written is warned about (`ctx.log`), with the host and the model. Text longer than
 * APP_NOTE_MAX_CHARS is cut there.
 */
export function createLogNotes(ctx: FleetContext, features: (hostId: string) => readonly string[] | null): NoteInLog {
  return (e, text) => {
    if (!(features(e.hostId)?.includes("log-note") ?? false)) return;
    const link = ctx.links.peek(e.hostId);
    if (!link || link.state !== "connected") return;
    link.call("logNote", { id: e.name, text: text.slice(0, APP_NOTE_MAX_CHARS) }, { timeoutMs: ctx.statusTimeoutMs }).catch((err: unknown) => {
      ctx.log.warn("could not write the app's note into the server's log on its host", { model: e.name, hostId: e.hostId, error: errorMessage(err) });
    });
  };
}
