import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { frameChunk, JOIN_MAX_BYTES, writeJoined } from "./write-joined";

/** What a socket would carry after one writeJoined, and how many writes it took. */
function written(head: string, body: Buffer | null, chunked: boolean): { bytes: Buffer; writes: number } {
  const socket = new PassThrough();
  const pieces: Buffer[] = [];
  socket.on("data", (c: Buffer) => pieces.push(c));
  let writes = 0;
  const write = socket.write.bind(socket);
  socket.write = ((...args: Parameters<typeof write>) => {
    writes++;
    return write(...args);
  }) as typeof socket.write;
  writeJoined(socket, head, body, chunked);
  socket.end();
  return { bytes: Buffer.concat(pieces), writes };
}

describe("writeJoined", () => {
  const head = "HTTP/1.1 200 OK\r\nX-Name: caf\u00e9\r\n\r\n";

  it("a small body goes behind its head in one buffer, the head as latin1 (one byte per character)", () => {
    const body = Buffer.from('{"text":"h\u00e9"}');
    const { bytes, writes } = written(head, body, false);
    expect(writes).toBe(1);
    expect(bytes.equals(Buffer.concat([Buffer.from(head, "latin1"), body]))).toBe(true);
  });

  it("chunked: the body is one chunk (hex size line, data, CRLF); an empty or absent body writes the head alone", () => {
    const body = Buffer.from("data: {}\n\n");
    expect(written(head, body, true).bytes.toString("latin1")).toBe(`${head}a\r\ndata: {}\n\n\r\n`);
    expect(written(head, Buffer.alloc(0), true).bytes.toString("latin1")).toBe(head);
    expect(written(head, null, false).bytes.toString("latin1")).toBe(head);
  });

  it("a body over JOIN_MAX_BYTES is written after its head, not copied, with the same bytes on the wire", () => {
    const body = Buffer.alloc(JOIN_MAX_BYTES + 1, 0x61);
    const { bytes, writes } = written(head, body, true);
    expect(writes).toBe(2);
    expect(bytes.equals(Buffer.concat([Buffer.from(head, "latin1"), frameChunk(body)]))).toBe(true);
    expect(frameChunk(Buffer.from("ab")).toString("latin1")).toBe("2\r\nab\r\n");
  });
});
