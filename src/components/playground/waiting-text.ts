/**
 * What the playground says while a message waits for its first token, from
 * the gateway's queue at its model (metrics.queue). Pure.
 *
 *   nobody waits            "Waiting for the first token…"
 *   requests wait (FIFO)    "Waiting for a place at alpha: 1 request being answered, 3 waiting (this one among them)…"
 */

/** The gateway's queue at one model (metrics.queue): requests answered now and waiting for a place. */
export interface QueueNow {
  running: number;
  queued: number;
}

export function waitingText(model: string, q: QueueNow | undefined): string {
  if (!q || q.queued === 0) return "Waiting for the first token…";
  const answered = `${q.running} request${q.running === 1 ? "" : "s"} being answered`;
  return `Waiting for a place at ${model}: ${answered}, ${q.queued} waiting (this one among them)…`;
}
