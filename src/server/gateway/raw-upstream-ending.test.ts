/**
 * raw-upstream.ts `onEnding`: the model's server stops under a request. A
 * stand-in upstream (stand-in-sse-upstream) writes a stream's head and the
 * bytes each case gives, in separate writes, then waits; the test then says
 * the server is going away and looks at what the client's sink got: the
 * error as the answer (nothing sent yet), one last error event and a proper
 * end (between two events, however the bytes were split), or a cut (in the
 * middle of an event).
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "./openai-error";
import { AgentError } from "synapse-host-agent/protocol";
import { createRawUpstream, type AnswerSink, type RawTarget } from "./raw-upstream";

const HEAD = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
/** One chunk of the chunked coding holding `text`. */
const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`;

/** What the stand-in writes after the request, by the request's path: each string one write, 20 ms apart. */
const SCRIPTS: Record<string, string[]> = {
  "/between": [HEAD, chunk('data: {"a":1}\n\n'), chunk('data: {"a":2}\n\n')],
  // The blank line that ends an event comes as one-byte chunks of their own.
  "/split": [HEAD, chunk('data: {"a":1}'), chunk("\n"), chunk("\n")],
  "/middle": [HEAD, chunk('data: {"a":1}\n\n'), chunk('data: {"')],
  "/no-head": [],
  // The server ends its requests as it exits, before the gateway hears of the stop (CLOSE: the stand-in closes).
  "/dropped": [HEAD, chunk('data: {"a":1}\n\n'), "CLOSE"],
  "/dropped-before-head": ["CLOSE"],
  "/length": ["HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 100\r\n\r\n", 'data: {"a":1}\n\n'],
};

let server: net.Server;
let port = 0;
const open = new Set<net.Socket>();
beforeAll(async () => {
  server = net.createServer((s) => {
    open.add(s);
    s.on("close", () => open.delete(s));
    s.on("error", () => undefined);
    s.once("data", async (req) => {
      const path = req.toString("latin1").split(" ")[1]!;
      for (const piece of SCRIPTS[path] ?? []) {
        if (s.destroyed) return;
        if (piece === "CLOSE") s.end();
        else s.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

interface Seen {
  body: string;
  ended: string | null;
  cut: boolean;
  error: GatewayError | null;
}

/** `noticeAfterMs`: when the notice comes (after every scripted write is in); null: never. */
async function endDuring(path: string, noticeAfterMs: number | null = 0): Promise<{ seen: Seen; outcome: unknown }> {
  const up = createRawUpstream();
  const seen: Seen = { body: "", ended: null, cut: false, error: null };
  let started = false;
  const sink: AnswerSink = {
    head() {
      started = true;
    },
    data(pieces) {
      for (const p of pieces) seen.body += p.toString("utf8");
      return true;
    },
    end(last) {
      seen.ended = (last ?? []).map((p) => p.toString("utf8")).join("");
    },
    cut() {
      seen.cut = true;
    },
    error(err) {
      seen.error = err;
    },
    get started() {
      return started;
    },
  };
  let ending: ((err: GatewayError) => void) | null = null;
  const forwarded = up.forward({ method: "POST", path, headers: [["Content-Type", "application/json"]], body: Buffer.from("{}") }, { key: `127.0.0.1:${port}`, host: "127.0.0.1", port }, sink, () => () => undefined, "model", (cb) => {
    ending = cb;
    return () => (ending = null);
  });
  // Every scripted write is in.
  await new Promise((r) => setTimeout(r, 150));
  const err = new GatewayError(503, "service_unavailable", "model_stopping", 'model "m" is stopping (stop requested): the request was ended with its server', { retryAfterS: 1 });
  if (noticeAfterMs !== null) {
    await new Promise((r) => setTimeout(r, noticeAfterMs));
    expect(ending, "the forward registered for its server's end").not.toBeNull();
    ending!(err);
  }
  const outcome = await forwarded;
  up.close();
  return { seen, outcome };
}

const LAST_EVENT = 'data: {"error":{"message":"model \\"m\\" is stopping (stop requested): the request was ended with its server","type":"service_unavailable","param":null,"code":"model_stopping"}}\n\n';

describe("a request whose model's server stops under it (raw-upstream onEnding)", () => {
  it("a stream between two events: its events, then the error as one last event, and a proper end", async () => {
    const { seen, outcome } = await endDuring("/between");
    expect(seen).toEqual({ body: 'data: {"a":1}\n\ndata: {"a":2}\n\n', ended: LAST_EVENT, cut: false, error: null });
    // The figures count it as the error it ended with.
    expect(outcome).toEqual({ status: 503, clientClosed: false });
    // The server sees its connection closed (what makes llama-server, asked to stop, exit).
    await expect.poll(() => open.size, { timeout: 2000 }).toBe(0);
  });

  it("the blank line that ends an event split over reads of one byte: still between two events", async () => {
    const { seen } = await endDuring("/split");
    expect(seen).toMatchObject({ body: 'data: {"a":1}\n\n', ended: LAST_EVENT, cut: false });
  });

  it("in the middle of an event: cut (an error line there would be read as part of the event)", async () => {
    const { seen } = await endDuring("/middle");
    expect(seen).toMatchObject({ body: 'data: {"a":1}\n\ndata: {"', ended: null, cut: true, error: null });
  });

  it("a stream with a Content-Length: cut (no byte more fits its framing)", async () => {
    const { seen } = await endDuring("/length");
    expect(seen).toMatchObject({ ended: null, cut: true });
  });

  it("nothing of the answer yet: the error is the answer", async () => {
    const { seen, outcome } = await endDuring("/no-head");
    expect(seen.error?.code).toBe("model_stopping");
    expect(seen).toMatchObject({ body: "", ended: null, cut: false });
    expect(outcome).toEqual({ status: 503, clientClosed: false });
  });

  it("the server closed the stream between two events before the notice came (it exited at once): the notice, 300 ms later, still ends it with the error event", async () => {
    const { seen, outcome } = await endDuring("/dropped", 300);
    expect(seen).toEqual({ body: 'data: {"a":1}\n\n', ended: LAST_EVENT, cut: false, error: null });
    expect(outcome).toEqual({ status: 503, clientClosed: false });
  });

  it("the server closed the connection before the answer's head, the notice came after: the error is the answer", async () => {
    const { seen, outcome } = await endDuring("/dropped-before-head", 300);
    expect(seen.error?.code).toBe("model_stopping");
    expect(outcome).toEqual({ status: 503, clientClosed: false });
  });

  it("the server closed the stream and no notice comes: cut, after the wait for one (a crash, not a stop)", async () => {
    const { seen, outcome } = await endDuring("/dropped", null);
    expect(seen).toMatchObject({ body: 'data: {"a":1}\n\n', ended: null, cut: true });
    expect(outcome).toEqual({ status: 200, clientClosed: false });
  });
});

describe("a connection refused where the model's server ran (it has just crashed, its notice on the way)", () => {
  /** A port nothing listens on: one the system gave a listener that has closed since. */
  const closedPort = async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const p = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return p;
  };
  /** The ssh link's error for a channel the host could not connect (ssh-tunnel.ts channelError, reason CONNECT_FAILED). */
  const channelRefused = (p: number) => new AgentError({ code: "UNAVAILABLE", message: `nothing listens on 127.0.0.1:${p} on host 'mac' (Connection refused)`, data: { port: p, refused: "connect" } });
  const notice = new GatewayError(503, "service_unavailable", "model_server_exited", 'model "m": its server exited (crashed: killed by SIGKILL); the request was ended with it', { retryAfterS: 1 });

  async function refusedThen(target: RawTarget, noticeAfterMs: number | null): Promise<{ error: GatewayError | null; outcome: unknown; ms: number }> {
    const up = createRawUpstream();
    let error: GatewayError | null = null;
    const sink: AnswerSink = { head() {}, data: () => true, end() {}, cut() {}, error: (e) => void (error = e), started: false };
    const ending: { tell: ((err: GatewayError) => void) | null } = { tell: null };
    const t0 = Date.now();
    const forwarded = up.forward({ method: "POST", path: "/v1/chat/completions", headers: [], body: Buffer.from("{}") }, target, sink, () => () => undefined, 'model "m"', (cb) => {
      ending.tell = cb;
      return () => (ending.tell = null);
    });
    if (noticeAfterMs !== null) {
      await new Promise((r) => setTimeout(r, noticeAfterMs));
      // Null: the forward had ended already (answered without waiting for the notice).
      ending.tell?.(notice);
    }
    const outcome = await forwarded;
    up.close();
    return { error, outcome, ms: Date.now() - t0 };
  }

  it.each(["tcp", "ssh"] as const)("%s: the crash's notice 300 ms later is the answer (503 model_server_exited), not 502", async (via) => {
    const p = await closedPort();
    const target: RawTarget = via === "tcp" ? { key: `127.0.0.1:${p}`, host: "127.0.0.1", port: p } : { key: `ssh h ${p}`, host: "127.0.0.1", port: p, connect: () => Promise.reject(channelRefused(p)) };
    const { error, outcome } = await refusedThen(target, 300);
    expect([error?.status, error?.code]).toEqual([503, "model_server_exited"]);
    expect(outcome).toEqual({ status: 503, clientClosed: false });
  });

  it.each(["tcp", "ssh"] as const)("%s: no notice within the wait for one: 502 upstream_refused, nothing listens", async (via) => {
    const p = await closedPort();
    const target: RawTarget = via === "tcp" ? { key: `127.0.0.1:${p}`, host: "127.0.0.1", port: p } : { key: `ssh h ${p}`, host: "127.0.0.1", port: p, connect: () => Promise.reject(channelRefused(p)) };
    const { error, ms } = await refusedThen(target, null);
    expect([error?.status, error?.code, error?.message]).toEqual([502, "upstream_refused", `model "m": nothing listens on 127.0.0.1:${p}`]);
    expect(ms).toBeGreaterThanOrEqual(900);
  });
});
