/**
 * uPlot, loaded once after the page (a dynamic import): the pages' first
 * load carries no chart code (the fleet page's budget is 200 kB gzipped;
 * bench/dashboard-bundle.ts), and the charts draw a moment later.
 */
import type uPlot from "uplot";

export type UPlotClass = typeof uPlot;

let loading: Promise<UPlotClass> | null = null;

export function loadUPlot(): Promise<UPlotClass> {
  loading ??= import("uplot").then(
    (m) => m.default,
    (err: unknown) => {
      loading = null; // a failed chunk load is tried again next time
      throw err;
    },
  );
  return loading;
}
