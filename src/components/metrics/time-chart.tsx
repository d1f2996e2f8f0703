"use client";
/**
 * A time chart drawn with uPlot (a canvas; ~50 kB minified, loaded after
 * the page: load-uplot.ts). Times are epoch ms; a null value is a gap.
 * The chart's container carries what the chart holds last, read back from
 * uPlot's own data: `data-last-t` (epoch ms) and `data-last-values`
 * (JSON array, one per series), so a test can compare it with the API.
 */
import { useEffect, useRef } from "react";
import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { loadUPlot } from "./load-uplot";
import styles from "./metrics.module.css";

export interface ChartSeries {
  label: string;
  color: string;
  values: (number | null)[];
}

export interface TimeChartProps {
  title: string;
  /** Epoch ms, ascending. */
  times: number[];
  series: ChartSeries[];
  /** The value axis's text for a value. */
  format: (v: number) => string;
  height?: number;
  /** The value axis starts at 0 and shows at least 0..1 (counts, rates). */
  fromZero?: boolean;
  testId?: string;
}

function dataOf(times: number[], series: ChartSeries[]): uPlot.AlignedData {
  return [times.map((t) => t / 1000), ...series.map((s) => s.values)] as uPlot.AlignedData;
}

export function TimeChart({ title, times, series, format, height = 160, fromZero = false, testId }: TimeChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => `${s.label}:${s.color}`).join("|");

  const latest = useRef({ times, series });
  latest.current = { times, series };

  /** Hands uPlot the data and records on the container what the chart holds, read back from uPlot. */
  const show = (u: uPlot, el: HTMLElement) => {
    u.setData(dataOf(latest.current.times, latest.current.series));
    const xs = u.data[0];
    const n = xs.length;
    el.dataset.points = String(n);
    el.dataset.lastT = n > 0 ? String(Math.round(xs[n - 1]! * 1000)) : "";
    el.dataset.lastValues = n > 0 ? JSON.stringify(u.data.slice(1).map((ys) => ys[n - 1] ?? null)) : "[]";
  };

  // Made once per set of series (after uPlot loads); data changes go through setData.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    let dead = false;
    let resize: ResizeObserver | null = null;
    loadUPlot().then(
      (UPlot) => {
        if (dead) return;
        const u = new UPlot(
          {
            width: Math.max(200, el.clientWidth),
            height,
            legend: { show: true, live: false },
            cursor: { drag: { x: false, y: false } },
            scales: { x: { time: true }, ...(fromZero ? { y: { range: (_u: uPlot, _min: number, max: number): uPlot.Range.MinMax => [0, Math.max(1, max * 1.1)] } } : {}) },
            axes: [
              { stroke: "#98a0ad", grid: { stroke: "#262c38" }, ticks: { stroke: "#262c38" } },
              { stroke: "#98a0ad", grid: { stroke: "#262c38" }, ticks: { stroke: "#262c38" }, size: 76, values: (_u, vals) => vals.map((v) => format(v)) },
            ],
            series: [{}, ...latest.current.series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: false, points: { show: false } }))],
          },
          dataOf(latest.current.times, latest.current.series),
          el,
        );
        plot.current = u;
        show(u, el);
        resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height }));
        resize.observe(el);
      },
      () => {
        el.dataset.error = "the chart code did not load";
      },
    );
    return () => {
      dead = true;
      resize?.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- re-made only when the series change
  }, [shape, height, fromZero]);

  useEffect(() => {
    const u = plot.current;
    const el = box.current;
    if (u && el) show(u, el);
  });

  return (
    <figure className={styles.chart}>
      <figcaption>{title}</figcaption>
      <div ref={box} data-testid={testId} className={styles.plot} />
    </figure>
  );
}
