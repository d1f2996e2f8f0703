/**
 * Joining a log tail fetched from the host with the lines that streamed in
 * while it was on its way. The host cuts the tail at the last line it had
 * sent live and says that line's number (`seq`); a live line with a greater
 * number is not in the tail and follows it. Without numbers (an older agent)
 * the tail alone is kept, as before.
 */
export interface NumberedLine {
  text: string;
  seq: number | null;
}

export function linesAfterTail<L extends NumberedLine>(live: readonly L[], tailSeq: number | null): L[] {
  if (tailSeq === null) return [];
  return live.filter((l) => l.seq !== null && l.seq > tailSeq);
}

/**
 * Whether the host's answer to a whole-log search (servers.logs with `search`) is shown for the text now in
 * the search box: it answers that text (case and outer spaces ignored), not one typed before it; and it came
 * (`answeredAt`, ms) no earlier than the tail that last replaced the lines shown (`tailAt`): a tail's lines
 * carry no seq, so the lines that streamed in after the answer's cut could no longer be told apart. When it
 * is not, the lines shown are searched until the host answers again.
 */
export function searchAnswerUsable(answered: { text: string; answeredAt: number }, boxText: string, tailAt: number): boolean {
  return answered.text.trim().toLowerCase() === boxText.trim().toLowerCase() && answered.answeredAt >= tailAt;
}
