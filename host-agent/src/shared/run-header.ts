/**
 * The lines the agent itself writes into a server's log, around each run. Here, not in the supervisor, so
 * the one-line views of a failure (error-text.ts, also in the browser) can tell them from the server's lines.
 */

/** How every line the agent writes into a server's log begins. */
export const AGENT_LINE_PREFIX = "=== synapse host-agent: ";

/**
 * How each run's first line in a server's log begins: the line the agent writes before it spawns the server
 * (spawn-prep.ts). Lines before the last such line are an earlier run's.
 */
export const RUN_HEADER_PREFIX = `${AGENT_LINE_PREFIX}starting `;

/** How a run's last line begins: the line the agent writes once the run has ended (runFooter). */
export const RUN_FOOTER_PREFIX = `${AGENT_LINE_PREFIX}ended `;

/**
 * A run's last line in its log: which server, when (ISO 8601, UTC), its state and why, and the typed cause,
 * so a log read on its own (`tail -F`, a copy of the file) says where and how each run ended. One line:
 * line breaks in the reason become spaces.
 *
 *   === synapse host-agent: ended qwen at 2026-12-01T18:40:00.000Z: stopped, cause requested: stopped on request ===
 */
export function runFooter(id: string, at: Date, state: string, cause: string | null, reason: string | null): string {
  const why = (reason ?? "").replace(/\s*[\r\n]+\s*/g, " ");
  return `${RUN_FOOTER_PREFIX}${id} at ${at.toISOString()}: ${state}${cause ? `, cause ${cause}` : ""}${why ? `: ${why}` : ""} ===`;
}

/** How a note from the app begins (appNote): a line between runs, not a run's header or last line. */
export const APP_NOTE_PREFIX = `${AGENT_LINE_PREFIX}note from the app `;

/** Longest text of a note from the app (characters). */
export const APP_NOTE_MAX_CHARS = 1000;

/**
 * A decision the app made about a server, as a line of its log (the `logNote` method): the restart after a
 * crash and when it comes, or why there is none, so a log read on its own says what followed a run's end.
 * One line: line breaks in the text become spaces.
 *
 *   === synapse host-agent: note from the app on qwen at 2026-12-01T18:40:01.000Z: killed by SIGKILL; restarting in 1.0 s (restart 1 of at most 4 within 10 minutes) ===
 */
export function appNote(id: string, at: Date, text: string): string {
  return `${APP_NOTE_PREFIX}on ${id} at ${at.toISOString()}: ${text.replace(/\s*[\r\n]+\s*/g, " ")} ===`;
}
