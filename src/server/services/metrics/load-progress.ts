/**
 * How far a loading model is. Two sources, the better one wins:
 *
 * - llama-server's log while it loads (the agent sends its lines): reading
 *   the GGUF's metadata, loading tensors (a line of dots when done),
 *   making the context, warming up, "model loaded";
 * - its elapsed time against its last load's duration (the same model's
 *   last start → ready), capped below 100 % (the log or the ready state
 *   says when it is done).
 */

/** A loading model's progress, for the dashboard and the playground. */
export interface LoadProgress {
  /** 0..1; null when neither the log nor a previous load says anything. */
  fraction: number | null;
  /** The last load step its log named, in words; null before any. */
  stage: string | null;
  /** Since its start (ms). */
  elapsedMs: number;
  /** Its last load's duration (ms); null: never loaded before (that we know). */
  expectedMs: number | null;
}

const STAGES: readonly { test: (line: string) => boolean; stage: string; fraction: number }[] = [
  { test: (l) => l.includes("loaded meta data with"), stage: "reading the model's metadata", fraction: 0.05 },
  { test: (l) => l.includes("loading model tensors"), stage: "loading tensors", fraction: 0.1 },
  // llama.cpp prints a dot per percent of tensors loaded and ends the line at 100 %.
  { test: (l) => /^\.{10,}$/.test(l.trim()), stage: "tensors loaded", fraction: 0.8 },
  { test: (l) => l.includes("constructing llama_context"), stage: "making the context", fraction: 0.85 },
  { test: (l) => l.includes("warming up the model"), stage: "warming up", fraction: 0.95 },
  { test: (l) => /\bmodel loaded\b/.test(l), stage: "loaded", fraction: 1 },
];

/** The load step a log line names, or null. */
export function stageOfLine(line: string): { stage: string; fraction: number } | null {
  for (const s of STAGES) if (s.test(line)) return { stage: s.stage, fraction: s.fraction };
  return null;
}

/** Below 1: the time estimate never says done. */
const TIME_CAP = 0.95;

export function loadProgress(o: { startedAtMs: number; nowMs: number; logged: { stage: string; fraction: number } | null; expectedMs: number | null }): LoadProgress {
  const elapsedMs = Math.max(0, o.nowMs - o.startedAtMs);
  const byTime = o.expectedMs !== null && o.expectedMs > 0 ? Math.min(TIME_CAP, elapsedMs / o.expectedMs) : null;
  const byLog = o.logged?.fraction ?? null;
  const fraction = byTime === null && byLog === null ? null : Math.max(byTime ?? 0, byLog ?? 0);
  return { fraction, stage: o.logged?.stage ?? null, elapsedMs, expectedMs: o.expectedMs };
}
