"use client";
/**
 * One shared one-second clock for every uptime on the page: a single
 * interval, started while something reads it, so rows never run timers of
 * their own.
 */
import { useSyncExternalStore } from "react";

let now = Date.now();
let timer: ReturnType<typeof setInterval> | null = null;
const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (!timer) {
    now = Date.now();
    timer = setInterval(() => {
      now = Date.now();
      for (const l of listeners) l();
    }, 1000);
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
}

/** The current time in ms, updated once a second; null while rendering on the server. */
export function useNow(): number | null {
  return useSyncExternalStore(subscribe, () => now, () => null);
}
