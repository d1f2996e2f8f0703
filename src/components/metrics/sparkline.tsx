"use client";
/**
 * A fleet row's sparkline of generated tokens/s (the last 5 minutes), drawn
 * with uPlot loaded after the page (a dynamic import: the fleet page's
 * first load carries no chart code). The last value is written beside it.
 */
import { useEffect, useRef } from "react";
import type uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatRate } from "./format";
import { loadUPlot } from "./load-uplot";
import styles from "./metrics.module.css";


const WIDTH = 96;
const HEIGHT = 22;

export function Sparkline({ values, label }: { values: (number | null)[]; label: string }) {
  const box = useRef<HTMLSpanElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = useRef(values);
  data.current = values;

  useEffect(() => {
    let dead = false;
    loadUPlot().then((UPlot) => {
      const el = box.current;
      if (dead || !el) return;
      plot.current = new UPlot(
        {
          width: WIDTH,
          height: HEIGHT,
          legend: { show: false },
          cursor: { show: false },
          select: { show: false, left: 0, top: 0, width: 0, height: 0 },
          scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
          axes: [{ show: false }, { show: false }],
          series: [{}, { stroke: "#5b9dff", fill: "rgba(91,157,255,0.15)", width: 1, points: { show: false } }],
          padding: [2, 0, 0, 0],
        },
        toData(data.current),
        el,
      );
    }, () => undefined); // no chart code (offline): the value beside it still shows
    return () => {
      dead = true;
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);

  useEffect(() => {
    plot.current?.setData(toData(values));
  }, [values]);

  const last = [...values].reverse().find((v) => v !== null) ?? null;
  return (
    <span className={styles.sparkBox} data-testid="sparkline" data-last={last ?? ""}>
      <span ref={box} className={styles.spark} role="img" aria-label={`${label}: generated tokens per second, last 5 minutes${last !== null ? `; now ${formatRate(last)}` : ""}`} />
      <span className={styles.sparkValue}>{last !== null ? `${formatRate(last)} tok/s` : ""}</span>
    </span>
  );
}

/** A fixed width of SLOTS points (5 minutes), newest at the right: a young server's line starts part-way. */
const SLOTS = 60;
const X = Array.from({ length: SLOTS }, (_, i) => i);

function toData(values: (number | null)[]): uPlot.AlignedData {
  const last = values.slice(-SLOTS);
  return [X, [...new Array<null>(SLOTS - last.length).fill(null), ...last]] as uPlot.AlignedData;
}
