"use client";
/**
 * The model picker: every model on every host (grouped by host), with what
 * each one would do now. Disabled models are listed but cannot be chosen,
 * and say why. Under it, the chosen model's situation: loads on the first
 * message, loading, or stopped with a button to start it.
 */
import type { ModelChoice } from "./model-choice";
import styles from "./playground.module.css";
import { firstClickOnly } from "~/components/ui/first-click";

export interface ModelPickerProps {
  groups: { host: string; choices: ModelChoice[] }[];
  value: string;
  onChange: (name: string) => void;
  disabled?: boolean;
}

export function ModelPicker({ groups, value, onChange, disabled }: ModelPickerProps) {
  const known = groups.some((g) => g.choices.some((c) => c.name === value));
  return (
    <div className={`field ${styles.picker}`}>
      <label htmlFor="pg-model">Model</label>
      <select id="pg-model" data-testid="model-picker" value={known ? value : ""} onChange={(e) => onChange(e.target.value)} disabled={disabled} aria-describedby="pg-model-state">
        {!known ? (
          <option value="" disabled>
            {groups.length === 0 ? "No models registered" : "Choose a model"}
          </option>
        ) : null}
        {groups.map((g) => (
          <optgroup key={g.host} label={g.host}>
            {g.choices.map((c) => (
              <option key={c.id} value={c.name} disabled={!c.pickable} title={c.reason ?? undefined}>
                {c.name} — {c.pickable ? c.note : (c.reason ?? c.note)}
              </option>
            ))}
          </optgroup>
        ))}
      </select>
    </div>
  );
}

export interface ModelStateLineProps {
  choice: ModelChoice | null;
  onStart: () => void;
  starting: boolean;
}

/** One line about the chosen model (live), with Start for a stopped `always` model. */
export function ModelStateLine({ choice, onStart, starting }: ModelStateLineProps) {
  if (!choice) return <p id="pg-model-state" className="muted" />;
  const text: Record<ModelChoice["readiness"], string> = {
    ready: `Ready on ${choice.host}.`,
    loading: `Loading on ${choice.host}…`,
    restarting: `Crashed on ${choice.host}; the app restarts it by itself: a message sent now waits for it.`,
    "on-demand": `Not loaded: your first message loads it on ${choice.host}.`,
    "needs-start":
      choice.display === "failed"
        ? `Failed on ${choice.host}: it is not started again until someone starts it (fix what the error says first).`
        : choice.display === "exited"
          ? `Crashed on ${choice.host}, and the app does not restart it (auto-restart is off): start it to chat.`
          : `Stopped on ${choice.host}. Its load policy is "always", so the gateway does not start it on request.`,
    disabled: `Disabled: enable it on its model page to use it.`,
  };
  return (
    <div id="pg-model-state" className={styles.modelState} data-testid="model-state" data-readiness={choice.readiness} aria-live="polite">
      <span>{text[choice.readiness]}</span>
      {choice.reason && choice.readiness !== "disabled" ? <span className={styles.reason}>{choice.reason}</span> : null}
      {choice.readiness === "needs-start" ? (
        <button type="button" className="btn btn-sm btn-primary" onClick={firstClickOnly(onStart)} disabled={starting} aria-busy={starting} data-testid="start-model">
          Start {choice.name}
          <span className="spin" data-on={starting} aria-hidden="true" />
        </button>
      ) : null}
    </div>
  );
}
