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
