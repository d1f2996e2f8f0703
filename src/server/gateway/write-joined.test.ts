import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { JOIN_MAX_BYTES, joinPieces, writeJoined } from "./write-joined";

/** What a socket would carry after one writeJoined, and how many writes it took. */
function written(head: string, body: Buffer | null): { bytes: Buffer; writes: number } {
  const socket = new PassThrough();
  const pieces: Buffer[] = [];
  socket.on("data", (c: Buffer) => pieces.push(c));
  let writes = 0;
  const write = socket.write.bind(socket);
  socket.write = ((...args: Parameters<typeof write>) => {
    writes++;
    return write(...args);
  }) as typeof socket.write;
  writeJoined(socket, head, body);
  socket.end();
  return { bytes: Buffer.concat(pieces), writes };
}

const head = "HTTP/1.1 200 OK\r\nX-Name: caf\u00e9\r\n\r\n";

describe("writeJoined", () => {
  it("a small body goes behind its head in one buffer, the head as latin1 (one byte per character)", () => {
    const body = Buffer.from('{"text":"h\u00e9"}');
    const { bytes, writes } = written(head, body);
    expect(writes).toBe(1);
    expect(bytes.equals(Buffer.concat([Buffer.from(head, "latin1"), body]))).toBe(true);
    expect(written(head, null).bytes.toString("latin1")).toBe(head);
  });

  it("a body over JOIN_MAX_BYTES is written after its head, not copied, with the same bytes on the wire", () => {
    const body = Buffer.alloc(JOIN_MAX_BYTES + 1, 0x61);
    const { bytes, writes } = written(head, body);
    expect(writes).toBe(2);
    expect(bytes.equals(Buffer.concat([Buffer.from(head, "latin1"), body]))).toBe(true);
  });
});

describe("joinPieces", () => {
  const pieces = [Buffer.from("data: {\"a\":1}\n\n"), Buffer.from("data: {\"b\":\"\u00e9\"}\n\n")];
  const total = pieces[0]!.length + pieces[1]!.length;

  it("chunked: a read's pieces are one chunk (hex size of them all, their bytes, CRLF) behind the head that waited", () => {
    const { buf, bodyAt, bodyLength } = joinPieces(head, pieces, true);
    expect(buf.toString("latin1")).toBe(`${head}${total.toString(16)}\r\n${Buffer.concat(pieces).toString("latin1")}\r\n`);
    expect(buf.subarray(bodyAt, bodyAt + bodyLength).equals(Buffer.concat(pieces))).toBe(true);
  });

  it("the last read ends with the zero chunk; an empty last read is the zero chunk alone (no empty chunk before it)", () => {
    expect(joinPieces(null, pieces, true, true).buf.toString("latin1")).toBe(`${total.toString(16)}\r\n${Buffer.concat(pieces).toString("latin1")}\r\n0\r\n\r\n`);
    expect(joinPieces(null, [], true, true).buf.toString("latin1")).toBe("0\r\n\r\n");
    expect(joinPieces(head, [], true, true).buf.toString("latin1")).toBe(`${head}0\r\n\r\n`);
  });

  it("Content-Length: the bytes as they are, no framing and no closing chunk", () => {
    const { buf, bodyAt } = joinPieces(head, pieces, false, true);
    expect(buf.equals(Buffer.concat([Buffer.from(head, "latin1"), ...pieces]))).toBe(true);
    expect(bodyAt).toBe(head.length);
  });

  it("copies: the pieces may be reused after the call (they are lent views of a read buffer)", () => {
    const lent = Buffer.from("hello");
    const { buf, bodyAt, bodyLength } = joinPieces(null, [lent], false);
    lent.fill(0);
    expect(buf.toString("latin1", bodyAt, bodyAt + bodyLength)).toBe("hello");
  });
});
