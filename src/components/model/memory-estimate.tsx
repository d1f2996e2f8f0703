"use client";
/**
 * The model's memory estimate, from the form's values as they are (unsaved): weights, KV cache, compute
 * buffer and prompt cache, updating as context size, parallel slots, batch sizes, flash attention or the
 * cache types (extra flags) change. Asked a quarter second after the last keystroke (models.estimate);
 * values the API's input schema refuses are named at once and never sent (estimate-failure.ts).
 */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import type { RouterInputs } from "~/components/api/types";
import { oneSize } from "~/components/fleet/memory-size";
import { chargedBytes } from "~/server/services/memory/plan";
import { useTRPC } from "~/trpc/client";
import { estimateFailureText, estimateRefusal } from "./estimate-failure";
import type { FlagRow } from "./flag-rows";
import styles from "./model.module.css";

export type EstimateInput = RouterInputs["models"]["estimate"];

const DEBOUNCE_MS = 250;

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/** A form field the estimate reads whose text does not parse: its label and what is wrong. */
export interface InvalidField {
  label: string;
  message: string;
}

/** What one estimate is asked with: the values, and the flag rows `input.extraFlags` was made from (to name a refused row). */
interface Asked {
  input: EstimateInput;
  flagRows: readonly FlagRow[];
}

/**
 * `input`: null while the form has values that do not parse; `invalid` names them. Meanwhile the estimate
 * of the last values that parsed stays on screen, dimmed and marked as such, so it is never read as the
 * estimate of what the form shows. `flagRows`: the form's extra-flag rows, in the order `input.extraFlags`
 * lists them; `fieldLabel`: the form's label of a field path. A refused estimate names its fields by
 * them, as the form names a refused save (estimate-failure.ts).
 */
export function MemoryEstimate({ input, flagRows, fieldLabel, invalid = [] }: { input: EstimateInput | null; flagRows: readonly FlagRow[]; fieldLabel: (path: string) => string | undefined; invalid?: readonly InvalidField[] }) {
  const trpc = useTRPC();
  // Values the API would refuse are refused here, in its words, and not asked (no HTTP 400 per keystroke).
  const refusal = useMemo(() => (input ? estimateRefusal(input, flagRows, fieldLabel) : null), [input, flagRows, fieldLabel]);
  // Keyed by content, not identity: the form makes a new object on every render. The rows travel with the
  // values they were sent with, so a refusal is worded with the rows of its own request.
  const key = input && refusal === null ? JSON.stringify({ input, flagRows } satisfies Asked) : null;
  const debounced = useDebounced(key, DEBOUNCE_MS);
  const asked = debounced ? (JSON.parse(debounced) as Asked) : null;
  const q = useQuery({ ...trpc.models.estimate.queryOptions(asked ? asked.input : { id: "" }), enabled: asked !== null, placeholderData: keepPreviousData });
  const e = q.data?.estimate ?? null;
  const size = oneSize;
  const stale = invalid.length > 0;
  const rows: [string, number, string][] = e
    ? [
        ["Weights", e.weightsBytes, "weights"],
        ["KV cache", e.kvCacheBytes, "kv-cache"],
        ["Compute buffer", e.computeBytes, "compute"],
        ["Prompt cache (--cache-ram, fills with use)", e.promptCacheBytes, "prompt-cache"],
      ]
    : [];
  return (
    <section className={styles.estimate} aria-labelledby="estimate-title" aria-busy={q.isFetching} data-testid="memory-estimate" data-pending={key !== debounced || q.isFetching} data-stale={stale}>
      <h3 id="estimate-title">Memory estimate</h3>
      {stale ? (
        <p className="field-error" role="status" data-testid="estimate-stale">
          {invalid.map((f) => `${f.label} ${f.message}`).join("; ")}. {e ? "The estimate below is for the last valid values." : "No estimate until it is fixed."}
        </p>
      ) : null}
      {refusal !== null ? (
        <p className="field-error" data-testid="estimate-error">
          {refusal}
        </p>
      ) : q.isError ? (
        <p className="field-error" data-testid="estimate-error">
          {estimateFailureText(q.error, asked?.flagRows ?? [], fieldLabel)}
        </p>
      ) : q.data?.unavailable ? (
        <p className="muted" data-testid="estimate-unavailable">
          {q.data.unavailable}
        </p>
      ) : e ? (
        <>
          <dl className={stale ? `kv ${styles.estimateStale}` : "kv"}>
            {rows.map(([label, bytes, id]) => (
              <div key={id} style={{ display: "contents" }}>
                <dt>{label}</dt>
                <dd className="mono" data-testid={`estimate-${id}`} data-bytes={bytes}>
                  {size(bytes)}
                </dd>
              </div>
            ))}
            <dt>Total, with a full prompt cache</dt>
            <dd className="mono" data-testid="estimate-total" data-bytes={e.totalBytes}>
              {size(e.totalBytes)}
            </dd>
            <dt>
              <strong>Charged against the host&apos;s budget</strong>
            </dt>
            <dd className="mono" data-testid="estimate-charged" data-bytes={chargedBytes(e)} title="What a start plan counts: weights, KV cache and compute buffer, which llama-server holds from the load. The prompt cache fills only as prompts are cached.">
              <strong>{size(chargedBytes(e))}</strong>
            </dd>
          </dl>
          {e.notes.length > 0 ? (
            <ul className={`muted ${styles.estimateNotes}`}>
              {e.notes.map((n) => (
                <li key={n}>{n}</li>
              ))}
            </ul>
          ) : null}
        </>
      ) : stale ? null : (
        <div className="skeleton" style={{ height: 90 }} />
      )}
    </section>
  );
}
