/**
 * Writes that keep a message's pieces together: a request's head and body
 * (`writeJoined`), an answer's head and the body bytes of one read of its
 * server (`joinPieces`). One `write` of one buffer is Node's cheapest path
 * to the socket (a corked pair goes through its writev path: a write request
 * and an array of pieces per message), and each write to a TCP connection is
 * a system call and a segment.
 */
import type { Writable } from "node:stream";

/** Largest request body copied into the head's buffer (bytes); a completion request is well under it. */
export const JOIN_MAX_BYTES = 16 * 1024;

/** The chunked coding's last chunk, with no trailer fields (RFC 9112 §7.1). */
export const LAST_CHUNK = "0\r\n\r\n";

/**
 * Writes `head` (latin1: one byte per character, as HTTP heads are read
 * here) and then `body` to `socket`: a body up to JOIN_MAX_BYTES is copied
 * behind its head into one buffer, a larger one is corked behind it instead
 * of copied. Returns what `socket.write` returns (false: wait for 'drain').
 */
export function writeJoined(socket: Writable, head: string, body: Buffer | null | undefined): boolean {
  const n = body?.length ?? 0;
  if (n > JOIN_MAX_BYTES) {
    socket.cork();
    socket.write(head, "latin1");
    const ok = socket.write(body!);
    socket.uncork();
    return ok;
  }
  const buf = Buffer.allocUnsafe(head.length + n);
  const at = buf.write(head, 0, "latin1");
  if (n > 0) body!.copy(buf, at);
  return socket.write(buf);
}

/**
 * One write of an answer's body bytes from one read of the server (see
 * AnswerSink.data): the pieces copied behind `head` (latin1; null when the
 * head went out already) into one new buffer, framed as one chunk of the
 * chunked transfer coding when `chunked` (an empty body adds no chunk: a
 * zero-size chunk would end the answer), then the closing zero-size chunk
 * when `chunked` and `last`. `bodyAt` and `bodyLength` say where the body's
 * bytes lie in `buf` (a view there outlives the lent pieces).
 */
export function joinPieces(head: string | null, pieces: readonly Buffer[], chunked: boolean, last = false): { buf: Buffer; bodyAt: number; bodyLength: number } {
  let n = 0;
  for (const p of pieces) n += p.length;
  const size = chunked && n > 0 ? `${n.toString(16)}\r\n` : "";
  const headLength = head === null ? 0 : head.length;
  const closing = chunked && last ? LAST_CHUNK : "";
  const buf = Buffer.allocUnsafe(headLength + size.length + n + (size ? 2 : 0) + closing.length);
  let at = head === null ? 0 : buf.write(head, 0, "latin1");
  if (size) at += buf.write(size, at, "latin1");
  const bodyAt = at;
  for (const p of pieces) at += p.copy(buf, at);
  if (size) {
    buf[at] = 13;
    buf[at + 1] = 10;
    at += 2;
  }
  if (closing) buf.write(closing, at, "latin1");
  return { buf, bodyAt, bodyLength: n };
}
