/**
 * The one line of a failed run's log tail that says what went wrong, for a one-line view of the failure
 * (errorHeadline): "exited with code 1 while loading" says that it failed, llama-server's own line says why.
 *
 * How llama-server reports (llama.cpp common/arg.cpp, common/log.cpp, src/llama.cpp):
 * - an argument it refuses, before anything else is printed, on stderr without a log prefix and followed by
 *   the flag's usage: `error while handling argument "--pooling": invalid value`, `error while handling
 *   environment variable "LLAMA_ARG_…": …`, `error: invalid argument: --bogus` (a flag it does not know),
 *   `error: unknown value for --flash-attn: 'x'`, `error: --model is required`;
 * - log lines, each with an optional prefix `M.SS.mmm.uuu ` (timestamp) and `I `/`W `/`E `/`D ` (level):
 *   a model that fails to load prints several `E` lines, the first the most precise
 *   (`E gguf_init_from_file: failed to open GGUF file '…' (No such file or directory)`), the later ones its
 *   consequences (`failed to load model`, `exiting due to model loading error`);
 * - aborts print bare lines: `…/ggml.c:1234: GGML_ASSERT(…) failed`, `terminate called after throwing …`,
 *   `  what():  …`;
 * - a server that ran also logs errors of single requests at level E (tools/server: `slot <fn>: id 0 | task 5
 *   | …`, `srv send_error: task id = 5, error: …`, `srv …: got exception: …`): a request's error, not why the
 *   process ended.
 *
 * The rule: a refused argument; else an abort (an uncaught exception's `what():` before the others); else
 * the first error-level (`E`) line; else the first line with no level that reads as an error (a log written
 * without prefixes). The first of each: a failed load's first error is its cause, the rest consequences.
 * Requests' errors, info, warning and debug lines are never chosen, nor the agent's own lines (a run's header
 * and its last line, run-header.ts). Colour codes
 * and the log prefix are dropped from the line shown, and runs of spaces made one.
 */
import { AGENT_LINE_PREFIX, RUN_HEADER_PREFIX } from "./run-header.ts";

/** The longest line returned (characters, "…" included): a table cell, not the whole log. */
export const TELLING_LINE_MAX_CHARS = 200;

const COLOUR = /\x1b\[[0-9;]*m/g;
/** llama.cpp's log prefix: timestamp (minutes.seconds.ms.µs) and level letter, each optional. */
const LOG_PREFIX = /^(?:\d+\.\d{2}\.\d{3}\.\d{3} )?(?:([IWED]) )?/;
/** common/arg.cpp's ways of refusing an argument (and the ones older llama.cpp builds used). */
const REFUSED_ARGUMENT =
  /^error\b|error while handling (?:argument|environment variable)|\binvalid argument\b|\bunknown (?:argument|option|value for)\b|\bunrecognized (?:argument|option)\b|\bexpected value for argument\b|\binvalid value\b/i;
/** A process ending on its own terms: a failed assertion, an abort, an exception nothing caught. */
const ABORT = /GGML_ASSERT|GGML_ABORT|terminate called|^what\(\):|\bAborted\b|Segmentation fault|\bfatal error\b/;
/** An error said without a log level: llama.cpp's fprintf(stderr, …) lines. */
const ERROR_WORDS = /\berror\b|\bfailed\b|\bfatal\b|\bexception\b|\babort(?:ed|ing)?\b|no such file|out of memory|\bcannot\b|\bunable to\b/i;
/** One request's error in a server that ran (tools/server's SLT_ERR and send_error, a handler's exception). */
const REQUEST_ERROR = /^slot\s|\btask id = \d+|\bid_task = \d+|\bgot (?:another )?exception:|\bhttp client error\b/;

/**
 * The most telling line of a run's log lines (oldest first, as a failure's log tail holds them; lines before
 * the last run header are ignored), without its log prefix, at most TELLING_LINE_MAX_CHARS characters;
 * null when no line says what went wrong.
 */
export function tellingLogLine(lines: readonly string[]): string | null {
  const header = lines.findLastIndex((l) => l.startsWith(RUN_HEADER_PREFIX));
  const candidates: { level: string | null; text: string }[] = [];
  for (const raw of lines.slice(header + 1)) {
    // The agent's own lines (a run's last line says how it ended, not why): never the telling one.
    if (raw.startsWith(AGENT_LINE_PREFIX)) continue;
    const clean = raw.replace(COLOUR, "").trimEnd();
    const m = LOG_PREFIX.exec(clean);
    const level = m?.[1] ?? null;
    // llama.cpp pads its module names ("srv    load_model:"): one space reads the same in a table cell.
    const text = clean.slice(m?.[0].length ?? 0).trim().replace(/\s+/g, " ");
    if (text === "" || (level !== null && level !== "E") || REQUEST_ERROR.test(text)) continue;
    candidates.push({ level, text });
  }
  const chosen =
    candidates.find((c) => REFUSED_ARGUMENT.test(c.text)) ??
    // An uncaught exception: its what() says more than the "terminate called" line before it.
    candidates.find((c) => /^what\(\):/.test(c.text)) ??
    candidates.find((c) => ABORT.test(c.text)) ??
    candidates.find((c) => c.level === "E") ??
    candidates.find((c) => c.level === null && ERROR_WORDS.test(c.text) && !/^warn(?:ing)?:/i.test(c.text));
  if (!chosen) return null;
  return chosen.text.length > TELLING_LINE_MAX_CHARS ? `${chosen.text.slice(0, TELLING_LINE_MAX_CHARS - 1)}…` : chosen.text;
}
