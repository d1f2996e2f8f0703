"use client";
/** The request's settings: system prompt, temperature, max tokens, and a grammar or JSON schema. */
import { FieldError, SelectField, TextField } from "~/components/form/fields";
import type { ChatSettings, Constraint, SettingsErrors } from "./chat-request";
import styles from "./playground.module.css";

const CONSTRAINTS: { value: Constraint; label: string }[] = [
  { value: "none", label: "None" },
  { value: "grammar", label: "Grammar (GBNF)" },
  { value: "json_schema", label: "JSON schema" },
];

export function SettingsPanel({ value, onChange, errors }: { value: ChatSettings; onChange: (s: ChatSettings) => void; errors: SettingsErrors }) {
  const set = <K extends keyof ChatSettings>(k: K, v: ChatSettings[K]) => onChange({ ...value, [k]: v });
  return (
    <section className="panel" aria-labelledby="pg-settings-title">
      <h2 id="pg-settings-title">Settings</h2>
      <div className={styles.settings}>
        <div className="field">
          <label htmlFor="pg-system">System prompt</label>
          <textarea id="pg-system" rows={3} value={value.systemPrompt} onChange={(e) => set("systemPrompt", e.target.value)} placeholder="You are a helpful assistant." />
        </div>
        <div className={styles.twoFields}>
          <TextField id="pg-temperature" label="Temperature" hint="0-2; empty: the server's default" inputMode="decimal" value={value.temperature} onChange={(v) => set("temperature", v)} error={errors.temperature} placeholder="default" />
          <TextField id="pg-max-tokens" label="Max tokens" hint="empty: until it stops" inputMode="numeric" value={value.maxTokens} onChange={(v) => set("maxTokens", v)} error={errors.maxTokens} placeholder="default" />
        </div>
        <SelectField id="pg-constraint" label="Constrain the output" value={value.constraint} onChange={(v) => set("constraint", v as Constraint)} options={CONSTRAINTS} hint="llama-server samples only what the grammar or schema allows" />
        {value.constraint === "grammar" ? (
          <div className="field">
            <label htmlFor="pg-grammar">Grammar (GBNF)</label>
            <textarea id="pg-grammar" rows={4} className="mono" spellCheck={false} value={value.grammar} onChange={(e) => set("grammar", e.target.value)} placeholder={'root ::= "yes" | "no"'} aria-invalid={errors.grammar ? true : undefined} aria-describedby={errors.grammar ? "pg-grammar-error" : undefined} />
            <FieldError id="pg-grammar" error={errors.grammar} />
          </div>
        ) : null}
        {value.constraint === "json_schema" ? (
          <div className="field">
            <label htmlFor="pg-schema">JSON schema</label>
            <textarea id="pg-schema" rows={6} className="mono" spellCheck={false} value={value.jsonSchema} onChange={(e) => set("jsonSchema", e.target.value)} placeholder={'{"type": "object", "properties": {"answer": {"type": "string"}}}'} aria-invalid={errors.jsonSchema ? true : undefined} aria-describedby={errors.jsonSchema ? "pg-schema-error" : undefined} />
            <FieldError id="pg-schema" error={errors.jsonSchema} />
          </div>
        ) : null}
      </div>
    </section>
  );
}
