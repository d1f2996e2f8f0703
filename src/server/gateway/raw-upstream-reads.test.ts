/**
 * raw-upstream.ts: an answer read in whatever pieces TCP gives. A read's
 * bytes are lent to the exchange (one read buffer for every connection), so
 * a head that arrives in parts must be kept as a copy, and the body bytes of
 * one read go to the sink together (one write to the client per read, not
 * one per chunk). The server is a stand-in: llama-server does not split its
 * heads or group its chunks on demand.
 */
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRawUpstream, type AnswerHead, type AnswerSink } from "./raw-upstream";

/** What the stand-in writes, one write each, with a pause between them so that each is read on its own. */
const WRITES = [
  "HTTP/1.1 200 OK\r\nContent-Ty", // the head in two parts, split mid-line
  "pe: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
  "00000000000000005\r\nhello\r\n6\r\n world\r\n3;note=x\r\n!!!\r\n", // three chunks in one write: leading zeros, an extension
  "A", // a chunk's size line in parts
  "\r\n01234",
  "56789\r\n",
  "4\r\nlast\r\n0\r\n\r\n", // the last chunk and the end together
];

/** What the stand-in writes for a request to /bad-size: a stream whose second chunk's size is not hex. */
const BAD_SIZE = ["HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "zz\r\nnever\r\n"];

let server: net.Server;
let port = 0;
beforeAll(async () => {
  // stand-in-split-chunked-upstream: answers a request with WRITES (or BAD_SIZE), 30 ms apart.
  server = net.createServer({ noDelay: true }, (s) => {
    s.on("error", () => undefined);
    s.once("data", async (request: Buffer) => {
      for (const w of request.toString("latin1").startsWith("POST /bad-size ") ? BAD_SIZE : WRITES) {
        if (s.destroyed) return;
        s.write(w);
        await sleep(30);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

it("a head split across reads and a read of several chunks: the answer whole, each read's chunks in one call to the sink", async () => {
  const calls: string[][] = [];
  let head: AnswerHead | null = null;
  let how = "";
  const sink: AnswerSink = {
    started: false,
    head: (h) => void (head = h),
    // The pieces are lent for the call: kept as copies.
    data: (pieces) => (calls.push(pieces.map((p) => Buffer.from(p).toString("latin1"))), true),
    end: (last) => {
      if (last) calls.push(last.map((p) => Buffer.from(p).toString("latin1")));
      how = "end";
    },
    cut: () => void (how = "cut"),
    error: (e) => void (how = `error ${e.message}`),
  };
  const up = createRawUpstream();
  const outcome = await up.forward({ method: "POST", path: "/completion", headers: [["Content-Type", "application/json"]], body: Buffer.from("{}") }, { key: `127.0.0.1:${port}`, host: "127.0.0.1", port }, sink, () => () => undefined, "stand-in");
  up.close();
  expect(how).toBe("end");
  expect(outcome).toEqual({ status: 200, clientClosed: false });
  expect(head).toMatchObject({ status: 200, length: null, streamed: true, headers: [["Content-Type", "text/event-stream"]] });
  expect(calls.flat().join("")).toBe("hello world!!!0123456789last");
  // The three chunks of one write came in one read: one call holds them all (the client gets one write).
  const withHello = calls.find((c) => c.includes("hello"));
  expect(withHello).toEqual(expect.arrayContaining(["hello", " world", "!!!"]));
});

it("a chunk size that is not hex: the answer is cut after what came whole (the client must not see a complete-looking stream)", async () => {
  let body = "";
  let how = "";
  const sink: AnswerSink = {
    started: true,
    head: () => undefined,
    data: (pieces) => ((body += pieces.map((p) => p.toString("latin1")).join("")), true),
    end: () => void (how = "end"),
    cut: () => void (how = "cut"),
    error: (e) => void (how = `error ${e.message}`),
  };
  const up = createRawUpstream();
  await up.forward({ method: "POST", path: "/bad-size", headers: [], body: Buffer.from("{}") }, { key: `127.0.0.1:${port}`, host: "127.0.0.1", port }, sink, () => () => undefined, "stand-in");
  up.close();
  expect(how).toBe("cut");
  expect(body).toBe("hello");
});
