/**
 * One HTTP message's head and body in one write. A body up to JOIN_MAX_BYTES
 * is copied behind its head into one buffer: one `write` of one buffer is
 * Node's cheapest path to the socket (a corked pair goes through its writev
 * path: a write request and an array of pieces per message). A larger body
 * is corked behind its head instead of copied.
 */
import type { Writable } from "node:stream";

/** Largest body copied into the head's buffer (bytes); a completion request or a short answer is well under it. */
export const JOIN_MAX_BYTES = 16 * 1024;

/**
 * Writes `head` (latin1: one byte per character, as HTTP heads are read
 * here) and then `body` to `socket`, the body framed as one chunk of the
 * chunked transfer coding (RFC 9112 §7.1: size line, data, CRLF) when
 * `chunked`. Returns what `socket.write` returns (false: wait for 'drain').
 */
export function writeJoined(socket: Writable, head: string, body: Buffer | null | undefined, chunked: boolean): boolean {
  const n = body?.length ?? 0;
  if (n > JOIN_MAX_BYTES) {
    socket.cork();
    socket.write(head, "latin1");
    const ok = socket.write(chunked ? frameChunk(body!) : body!);
    socket.uncork();
    return ok;
  }
  const size = chunked && n > 0 ? `${n.toString(16)}\r\n` : "";
  const buf = Buffer.allocUnsafe(head.length + size.length + n + (size ? 2 : 0));
  let at = buf.write(head, 0, "latin1");
  if (size) at += buf.write(size, at, "latin1");
  if (n > 0) at += body!.copy(buf, at);
  if (size) {
    buf[at] = 13;
    buf[at + 1] = 10;
  }
  return socket.write(buf);
}

/** One piece of a body as one chunk of the chunked transfer coding (size line, data, CRLF), in one buffer. */
export function frameChunk(chunk: Buffer): Buffer {
  const size = `${chunk.length.toString(16)}\r\n`;
  const framed = Buffer.allocUnsafe(size.length + chunk.length + 2);
  framed.write(size, 0, "latin1");
  chunk.copy(framed, size.length);
  framed[framed.length - 2] = 13;
  framed[framed.length - 1] = 10;
  return framed;
}
