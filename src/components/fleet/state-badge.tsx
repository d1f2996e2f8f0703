import { displayState } from "~/shared/display-state";

/**
 * Fixed-width badge, so a row never moves when the state changes. `lastKnown`: the host is unreachable, the
 * state is the last one the app was told: grey (not READY's green), not pulsing, and its title says so.
 */
export function StateBadge({ state, desired, loadPolicy, testId, lastKnown = false }: { state: string; desired?: string | null; loadPolicy?: string | null; testId?: string; lastKnown?: boolean }) {
  const d = displayState(state, desired, loadPolicy);
  return (
    <span
      className="badge"
      data-tone={lastKnown ? "idle" : d.tone}
      data-pulse={lastKnown ? false : d.busy}
      data-state={d.key}
      data-last-known={lastKnown || undefined}
      data-testid={testId}
      title={lastKnown ? `last known: ${d.description}; its host cannot be reached now` : d.description}
    >
      <span className="dot" aria-hidden="true" />
      {d.label}
    </span>
  );
}
