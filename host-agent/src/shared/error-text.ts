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
 * The first line of a failure's text, for a table cell or a one-line answer: the reason, without the
 * "; last log lines:" that introduces the log lines below it (which a one-line view does not show).
 * "" for null or empty text.
 */
export function errorHeadline(text: string | null | undefined): string {
  const first = (text ?? "").split("\n")[0]!.trim();
  return first.endsWith(LOG_TAIL_MARK) ? first.slice(0, -LOG_TAIL_MARK.length).trimEnd() : first;
}
