/**
 * raw-upstream.ts: a forward settled by the client's leaving releases its
 * silence deadline timer (idleTimeoutMs, 10 min by default) and listeners,
 * which hold the request body, the sink and the socket. (A first version
 * returned from fail() on `settled` before its cleanup.)
 */
import net from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRawUpstream, type AnswerSink } from "./raw-upstream";

let server: net.Server;
let port = 0;
beforeAll(async () => {
  // stand-in-silent-upstream: reads the request, never answers
  server = net.createServer((s) => s.on("data", () => undefined));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const timeouts = () => process.getActiveResourcesInfo().filter((x) => x === "Timeout").length;

it("releases the silence timer when the client leaves before the answer", async () => {
  const up = createRawUpstream({ idleTimeoutMs: 600_000 });
  const before = timeouts();
  for (let i = 0; i < 20; i++) {
    let leave: () => void = () => undefined;
    const sink: AnswerSink = { head() {}, data: () => true, end() {}, cut() {}, error() {}, started: false };
    const p = up.forward({ method: "POST", path: "/v1/chat/completions", headers: [["Content-Type", "application/json"]], body: Buffer.alloc(1024 * 1024) }, { key: `127.0.0.1:${port}`, host: "127.0.0.1", port }, sink, (cb) => {
      leave = cb;
      return () => (leave = () => undefined);
    }, "model");
    await new Promise((r) => setTimeout(r, 30)); // connected, request sent, no answer yet
    leave(); // the client went away
    expect(await p).toEqual({ status: 499, clientClosed: true });
  }
  await new Promise((r) => setTimeout(r, 100)); // the destroyed sockets' 'close' ran
  // 20 requests, each left behind a 10-minute timer holding a 1 MiB body:
  expect(timeouts() - before).toBeLessThanOrEqual(0);
  up.close();
});
