import { displayState } from "~/shared/display-state";

/** Fixed-width badge, so a row never moves when the state changes. */
export function StateBadge({ state, desired, loadPolicy, testId }: { state: string; desired?: string | null; loadPolicy?: string | null; testId?: string }) {
  const d = displayState(state, desired, loadPolicy);
  return (
    <span className="badge" data-tone={d.tone} data-pulse={d.busy} data-state={d.key} data-testid={testId} title={d.description}>
      <span className="dot" aria-hidden="true" />
      {d.label}
    </span>
  );
}
