/**
 * The memory bar's legend (pure): one entry per sized segment, in the bar's order, each with the colour
 * its segment is drawn in. The names live in the legend, not inside the segments: a segment is as wide
 * as its model's share of the budget, often a few pixels, so a name written inside it was cut off or
 * ran into its neighbours'. Legend entries wrap onto as many lines as the names need.
 */

/**
 * Segment colours, told apart on the dark theme; none is the red of the budget line or the bad tone.
 * The nth sized segment takes colour n (cycling after the last).
 */
export const SEGMENT_COLORS = ["#5b9dff", "#3ecf8e", "#f5b942", "#c084fc", "#2dd4bf", "#f472b6", "#fb923c", "#a3e635"] as const;

export interface LegendSegment {
  modelId: string;
  name: string;
  /** running: holds memory now; start-all: START ALL ENABLED would start it. */
  kind: "running" | "start-all";
  /** Bytes the plan charges; null: no estimate (not drawn, listed apart as "not counted"). */
  bytes: number | null;
}

export interface LegendEntry<S extends LegendSegment = LegendSegment> {
  segment: S & { bytes: number };
  /** CSS colour of the segment and of the entry's swatch. */
  color: string;
}

/** The sized segments of a bar, each with its colour; segments without an estimate are left out. */
export function memoryLegend<S extends LegendSegment>(segments: readonly S[]): LegendEntry<S>[] {
  return segments
    .filter((s): s is S & { bytes: number } => s.bytes !== null)
    .map((segment, i) => ({ segment, color: SEGMENT_COLORS[i % SEGMENT_COLORS.length]! }));
}
