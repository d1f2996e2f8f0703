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
