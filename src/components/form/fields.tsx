"use client";
/**
 * Labelled inputs with their hint and inline error. The error is tied to the
 * input (aria-describedby, aria-invalid) and announced when it appears.
 */
import type { ReactNode } from "react";

interface BaseProps {
  id: string;
  label: ReactNode;
  hint?: ReactNode;
  error?: string | undefined;
  className?: string;
}

function describedBy(id: string, hint: ReactNode, error: string | undefined): string | undefined {
  const ids = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean);
  return ids.length ? ids.join(" ") : undefined;
}

function Hint({ id, hint }: { id: string; hint: ReactNode }) {
  return hint ? (
    <span id={`${id}-hint`} className="hint">
      {hint}
    </span>
  ) : null;
}

export function FieldError({ id, error }: { id: string; error: string | undefined }) {
  return error ? (
    <span id={`${id}-error`} className="field-error" role="alert" data-testid={`error-${id}`}>
      {error}
    </span>
  ) : null;
}

export function TextField({
  id,
  label,
  hint,
  error,
  className,
  value,
  onChange,
  placeholder,
  inputMode,
  mono,
  autoComplete = "off",
  required,
}: BaseProps & {
  value: string;
  onChange: (v: string) => void;
  placeholder?: string;
  inputMode?: "numeric" | "text" | "decimal";
  mono?: boolean;
  autoComplete?: string;
  required?: boolean;
}) {
  return (
    <div className={`field ${className ?? ""}`}>
      <label htmlFor={id}>
        {label}
        {required ? <span aria-hidden="true" className="faint"> *</span> : null}
      </label>
      <input
        id={id}
        name={id}
        type="text"
        inputMode={inputMode}
        value={value}
        placeholder={placeholder}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, hint, error)}
        aria-required={required || undefined}
        autoComplete={autoComplete}
        spellCheck={false}
        className={mono ? "mono" : undefined}
      />
      <Hint id={id} hint={hint} />
      <FieldError id={id} error={error} />
    </div>
  );
}

export function SelectField({
  id,
  label,
  hint,
  error,
  className,
  value,
  onChange,
  options,
}: BaseProps & { value: string; onChange: (v: string) => void; options: readonly { value: string; label: string }[] }) {
  return (
    <div className={`field ${className ?? ""}`}>
      <label htmlFor={id}>{label}</label>
      <select id={id} name={id} value={value} onChange={(e) => onChange(e.target.value)} aria-invalid={error ? true : undefined} aria-describedby={describedBy(id, hint, error)}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      <Hint id={id} hint={hint} />
      <FieldError id={id} error={error} />
    </div>
  );
}

export function SwitchField({ id, label, hint, error, checked, onChange }: BaseProps & { checked: boolean; onChange: (v: boolean) => void }) {
  return (
    <div className="field">
      <label className="switch" htmlFor={id}>
        <input id={id} name={id} type="checkbox" role="switch" checked={checked} onChange={(e) => onChange(e.target.checked)} aria-describedby={describedBy(id, hint, error)} aria-invalid={error ? true : undefined} />
        <span>{label}</span>
      </label>
      <Hint id={id} hint={hint} />
      <FieldError id={id} error={error} />
    </div>
  );
}

/**
 * The summary of a refused save (`message`) and the problems for fields the form does not show,
 * each already worded with the field's label (`text`, see form-failure.ts): still shown, never lost.
 */
export function FormErrors({ message, issues }: { message?: string | null; issues?: readonly { path: string; text: string }[] }) {
  if (!message && (!issues || issues.length === 0)) return null;
  return (
    <div className="notice" data-tone="bad" role="alert" data-testid="form-errors">
      <div>
        {message ? <p>{message}</p> : null}
        {issues && issues.length > 0 ? (
          <ul style={{ margin: 0, paddingLeft: 18 }}>
            {issues.map((i) => (
              <li key={i.path}>{i.text}</li>
            ))}
          </ul>
        ) : null}
      </div>
    </div>
  );
}
