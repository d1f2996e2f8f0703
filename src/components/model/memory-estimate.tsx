"use client";
/**
 * The model's memory estimate, from the form's values as they are (unsaved): weights, KV cache, compute
 * buffer and prompt cache, updating as context size, parallel slots, batch sizes, flash attention or the
 * cache types (extra flags) change. Asked a quarter second after the last keystroke (models.estimate).
 */
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { errorMessage } from "~/components/api/errors";
import type { RouterInputs } from "~/components/api/types";
import { oneSize } from "~/components/fleet/memory-bars";
import { chargedBytes } from "~/server/services/memory/plan";
import { useTRPC } from "~/trpc/client";
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

/** `input`: null while the form has values that do not parse (the estimate keeps the last good ones). */
export function MemoryEstimate({ input }: { input: EstimateInput | null }) {
  const trpc = useTRPC();
  // Keyed by content, not identity: the form makes a new object on every render.
  const key = input ? JSON.stringify(input) : null;
  const debounced = useDebounced(key, DEBOUNCE_MS);
  const q = useQuery({ ...trpc.models.estimate.queryOptions(debounced ? (JSON.parse(debounced) as EstimateInput) : { id: "" }), enabled: debounced !== null, placeholderData: keepPreviousData });
  const e = q.data?.estimate ?? null;
  const size = oneSize;
  const rows: [string, number, string][] = e
    ? [
        ["Weights", e.weightsBytes, "weights"],
        ["KV cache", e.kvCacheBytes, "kv-cache"],
        ["Compute buffer", e.computeBytes, "compute"],
        ["Prompt cache (--cache-ram, fills with use)", e.promptCacheBytes, "prompt-cache"],
      ]
    : [];
  return (
    <section className={styles.estimate} aria-labelledby="estimate-title" aria-busy={q.isFetching} data-testid="memory-estimate" data-pending={key !== debounced || q.isFetching}>
      <h3 id="estimate-title">Memory estimate</h3>
      {q.isError ? (
        <p className="field-error">Cannot estimate these values: {errorMessage(q.error)}</p>
      ) : q.data?.unavailable ? (
        <p className="muted" data-testid="estimate-unavailable">
          {q.data.unavailable}
        </p>
      ) : e ? (
        <>
          <dl className="kv">
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
      ) : (
        <div className="skeleton" style={{ height: 90 }} />
      )}
    </section>
  );
}
