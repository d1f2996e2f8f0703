/**
 * The last hour of each model's figures in memory: one point per read
 * (every 5 s: 720 points), in a fixed-size ring per model, so memory is
 * bounded by models × HISTORY_POINTS whatever the uptime.
 */

/** One model's figures at one moment. */
export interface MetricPoint {
  /** Epoch ms. */
  t: number;
  /** Generated tokens per second since the previous point (null: unknown, e.g. first read or not ready). */
  generatedTokensPerS: number | null;
  /** Prompt tokens processed per second (cached excluded). */
  promptTokensPerS: number | null;
  /** Requests the gateway is answering at the model. */
  inFlight: number;
  /** Requests waiting in the gateway's queue. */
  queued: number;
  /** Mean duration of the requests that ended since the previous point (ms); null: none. */
  latencyMs: number | null;
  /** Resident memory of its llama-server (bytes); null: not known. */
  memoryBytes: number | null;
}

/** 1 hour at one point per 5 s. */
export const HISTORY_POINTS = 720;

export class ModelHistory {
  private readonly ring: (MetricPoint | undefined)[];
  private next = 0;
  private size = 0;

  constructor(readonly capacity = HISTORY_POINTS) {
    this.ring = new Array<MetricPoint | undefined>(capacity);
  }

  push(p: MetricPoint): void {
    this.ring[this.next] = p;
    this.next = (this.next + 1) % this.capacity;
    this.size = Math.min(this.size + 1, this.capacity);
  }

  /** Points oldest first, those at or after `sinceMs` when given. */
  points(sinceMs = -Infinity): MetricPoint[] {
    const out: MetricPoint[] = [];
    for (let i = 0; i < this.size; i++) {
      const p = this.ring[(this.next - this.size + i + this.capacity) % this.capacity]!;
      if (p.t >= sinceMs) out.push(p);
    }
    return out;
  }

  last(): MetricPoint | null {
    return this.size === 0 ? null : this.ring[(this.next - 1 + this.capacity) % this.capacity]!;
  }
}

/** Means of a minute's points, as stored in SQLite (MetricMinute). */
export interface MinutePoint {
  /** Start of the minute, epoch ms. */
  t: number;
  generatedTokensPerS: number;
  promptTokensPerS: number;
  /** Most in flight / queued at any point of the minute. */
  inFlight: number;
  queued: number;
  latencyMs: number | null;
  memoryBytes: number | null;
}

function mean(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
}

/** The minute of `points` (all within it); null when there are none. */
export function minuteOf(minuteStartMs: number, points: readonly MetricPoint[]): MinutePoint | null {
  if (points.length === 0) return null;
  return {
    t: minuteStartMs,
    generatedTokensPerS: mean(points.map((p) => p.generatedTokensPerS)) ?? 0,
    promptTokensPerS: mean(points.map((p) => p.promptTokensPerS)) ?? 0,
    inFlight: Math.max(...points.map((p) => p.inFlight)),
    queued: Math.max(...points.map((p) => p.queued)),
    latencyMs: mean(points.map((p) => p.latencyMs)),
    memoryBytes: points.map((p) => p.memoryBytes).filter((m) => m !== null).at(-1) ?? null,
  };
}
