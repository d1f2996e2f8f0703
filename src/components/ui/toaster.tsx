"use client";
/**
 * Short messages about actions ("Started qwen", "Stop failed: …"), stacked in
 * a fixed corner so they never push the page around. Errors stay until
 * dismissed; the rest fade after a few seconds.
 */
import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";
import styles from "./toaster.module.css";

type Tone = "ok" | "bad" | "info";
interface Toast {
  id: number;
  tone: Tone;
  text: string;
}

interface ToastApi {
  push: (text: string, tone?: Tone) => void;
}

const ToastContext = createContext<ToastApi>({ push: () => {} });
const MAX_TOASTS = 4;

export function Toaster({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);
  const dismiss = useCallback((id: number) => setToasts((ts) => ts.filter((t) => t.id !== id)), []);
  const push = useCallback(
    (text: string, tone: Tone = "info") => {
      const id = next.current++;
      setToasts((ts) => [...ts, { id, tone, text }].slice(-MAX_TOASTS));
      if (tone !== "bad") setTimeout(() => dismiss(id), 4000);
    },
    [dismiss],
  );
  const api = useMemo(() => ({ push }), [push]);
  return (
    <ToastContext.Provider value={api}>
      {children}
      <div className={styles.stack} role="status" aria-live="polite" data-testid="toasts">
        {toasts.map((t) => (
          <div key={t.id} className={styles.toast} data-tone={t.tone}>
            <span className={styles.text}>{t.text}</span>
            <button type="button" className="btn btn-ghost btn-sm" onClick={() => dismiss(t.id)} aria-label="Dismiss message">
              ✕
            </button>
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

export function useToast(): ToastApi {
  return useContext(ToastContext);
}
