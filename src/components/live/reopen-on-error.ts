"use client";
/**
 * Re-opens a tRPC subscription (`useSubscription`) that failed for good, with
 * backoff: 1 s, 2 s, 4 s … at most `maxMs`, counted again from 1 s once it
 * connects. The fleet's live stream, the model page's log and the Activity
 * page each keep one open.
 */
import { useEffect, useRef } from "react";

/** The part of useSubscription's result this needs. */
export interface ReopenableSubscription {
  status: "idle" | "connecting" | "pending" | "error";
  reset: () => void;
}

export const MAX_REOPEN_BACKOFF_MS = 10_000;

export function useReopenOnError({ status, reset }: ReopenableSubscription, maxMs: number = MAX_REOPEN_BACKOFF_MS): void {
  const failures = useRef(0);
  useEffect(() => {
    if (status === "pending") failures.current = 0;
    if (status !== "error") return;
    const delay = Math.min(maxMs, 1000 * 2 ** failures.current);
    failures.current += 1;
    const t = setTimeout(reset, delay);
    return () => clearTimeout(t);
  }, [status, reset, maxMs]);
}
