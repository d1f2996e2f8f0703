/** Why a server is not running (ServerView.cause), in the words of STOP_CAUSE_TEXT; nothing while it runs. */
import { isAlive, isStopCause, STOP_CAUSE_TEXT } from "synapse-host-agent/server-states";

/** The cause's text for a server in `state`, or null (running, or no cause recorded). */
export function stopCauseText(state: string, cause: string | null | undefined): string | null {
  return !isAlive(state) && isStopCause(cause) ? STOP_CAUSE_TEXT[cause] : null;
}

export function StopCause({ state, cause, className }: { state: string; cause: string | null | undefined; className?: string }) {
  const text = stopCauseText(state, cause);
  if (!text) return null;
  return (
    <span className={className ?? "faint"} data-testid="stop-cause" data-cause={cause ?? undefined}>
      {text}
    </span>
  );
}
