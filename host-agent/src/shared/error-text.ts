import { tellingLogLine } from "./telling-log-line.ts";

/** An error's message for logs and replies: `Error.message`, or the value as text. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One validation issue: a dotted path ("" for the whole input) and what is wrong. */
export interface Issue {
  path: string;
  message: string;
}

/** Issues as one line, "path: message; path: message"; an empty path is shown as `whole`. */
export function formatIssues(issues: readonly Issue[], whole = "(input)"): string {
  return issues.map((i) => `${i.path || whole}: ${i.message}`).join("; ");
}

/** What a failure's text appends before the server's last log lines (report-decision.ts, managed-server.ts). */
export const LOG_TAIL_MARK = "; last log lines:";

/**
 * A failure's reason: its first line, without the "; last log lines:" that introduces the log lines below it.
 * "" for null or empty text.
 */
export function errorReason(text: string | null | undefined): string {
  const first = (text ?? "").split("\n")[0]!.trim();
  return first.endsWith(LOG_TAIL_MARK) ? first.slice(0, -LOG_TAIL_MARK.length).trimEnd() : first;
}

/** What joins a failure's reason and its log's telling line in errorHeadline. */
export const LOG_SAYS = "; the log says: ";

/**
 * A failure's text as one line, for a table cell or a one-line answer: the reason (errorReason) and, when the
 * text carries the server's last log lines (after LOG_TAIL_MARK), the one that says what went wrong
 * (telling-log-line.ts, at most TELLING_LINE_MAX_CHARS), so "exited with code 1 while loading" reads
 * `exited with code 1 while loading; the log says: error while handling argument "--pooling": invalid value`.
 * "" for null or empty text.
 */
export function errorHeadline(text: string | null | undefined): string {
  const reason = errorReason(text);
  const lines = (text ?? "").split("\n");
  if (!lines[0]!.trim().endsWith(LOG_TAIL_MARK)) return reason;
  const telling = tellingLogLine(lines.slice(1));
  return telling && !reason.includes(telling) ? `${reason}${LOG_SAYS}${telling}` : reason;
}
