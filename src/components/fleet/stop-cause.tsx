/** Why a server is not running (ServerView.cause), in the words of STOP_CAUSE_TEXT; nothing while it runs. */
import { isAlive, isStopCause, STOP_CAUSE_TEXT } from "synapse-host-agent/server-states";

/** The cause's text for a server in `state`, or null (running, or no cause recorded). */
export function stopCauseText(state: string, cause: string | null | undefined): string | null {
  return !isAlive(state) && isStopCause(cause) ? STOP_CAUSE_TEXT[cause] : null;
}

/**
 * The cause's text to show beside the state badge, or null: as stopCauseText, minus the one cause the
 * badge already says (an exited server's "crashed" beside its CRASHED badge).
 */
export function stopCauseBesideBadge(state: string, cause: string | null | undefined): string | null {
  return state === "exited" && cause === "crash" ? null : stopCauseText(state, cause);
}

/** `besideBadge`: placed next to the state's badge (stopCauseBesideBadge). */
export function StopCause({ state, cause, className, besideBadge = false }: { state: string; cause: string | null | undefined; className?: string; besideBadge?: boolean }) {
  const text = besideBadge ? stopCauseBesideBadge(state, cause) : stopCauseText(state, cause);
  if (!text) return null;
  return (
    <span className={className ?? "faint"} data-testid="stop-cause" data-cause={cause ?? undefined}>
      {text}
    </span>
  );
}
