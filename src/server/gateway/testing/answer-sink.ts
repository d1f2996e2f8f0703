/**
 * An AnswerSink (raw-upstream.ts) for tests: it keeps what the relay gave it
 * and settles `done` once the answer ended, whichever way: `end` (whole),
 * `cut` (broken after its head) or `error` (the gateway's own answer: its
 * status, code and message as the body).
 */
import type { AnswerHead, AnswerSink } from "../raw-upstream";

export interface CollectedAnswer {
  head: AnswerHead | null;
  /** The body's bytes as text; for `error`, "<status> <code>: <message>". */
  body: string;
  how: "end" | "cut" | "error";
}

export function collectAnswer(): { sink: AnswerSink; done: Promise<CollectedAnswer> } {
  let head: AnswerHead | null = null;
  const parts: Buffer[] = [];
  let settle: (v: CollectedAnswer) => void = () => undefined;
  const done = new Promise<CollectedAnswer>((r) => (settle = r));
  let started = false;
  const sink: AnswerSink = {
    get started() {
      return started;
    },
    head(h) {
      head = h;
      started = true;
    },
    // The pieces are lent for the call (AnswerSink.data): kept as a copy.
    data: (pieces) => (parts.push(Buffer.concat(pieces)), true),
    end: (last) => {
      if (last) parts.push(Buffer.concat(last));
      settle({ head, body: Buffer.concat(parts).toString(), how: "end" });
    },
    cut: () => settle({ head, body: Buffer.concat(parts).toString(), how: "cut" }),
    error: (e) => settle({ head: null, body: `${e.status} ${e.code}: ${e.message}`, how: "error" }),
  };
  return { sink, done };
}
