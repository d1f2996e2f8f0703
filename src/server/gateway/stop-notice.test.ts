/**
 * The gateway over a fake fleet (its stop notices and registry reads under
 * the test's control) and stand-ins for llama-server: a request that waited
 * for a place while its model's server was being stopped looks at the model
 * again and is never sent to the stopping server; one that waited while
 * nothing stopped reads nothing more; a stream between two events gets the
 * stop as its last event on both client paths (the fast path, Node's).
 * Written by the review of c461103, which found the first (a read that began
 * before the stop was recorded) and the second (a read for every queued
 * request).
 */
import http from "node:http";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { attachFastPath } from "./fast-path";
import { createGateway } from "./gateway";
import type { GatewayFleet, GatewayModel } from "./fleet-port";
import type { ModelStopping } from "./stopping";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A stand-in llama-server: each request is held until `answer(i)` (i: arrival index), which answers it 200 JSON. */
async function standIn(): Promise<{ port: number; arrived: () => number; answer: (i: number) => void }> {
  const held: net.Socket[] = [];
  const server = net.createServer((s) => {
    s.on("error", () => undefined);
    let got = "";
    s.on("data", (d) => {
      got += d.toString("latin1");
      if (got.includes("\r\n\r\n")) {
        got = "";
        held.push(s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => {
    for (const s of held) s.destroy();
    server.close();
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    arrived: () => held.length,
    answer: (i) => held[i]!.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'),
  };
}

function model(port: number, extra: Partial<GatewayModel> = {}): GatewayModel {
  return {
    id: "m1",
    name: "m",
    alias: null,
    hostId: "h1",
    host: "local",
    upstream: { host: "127.0.0.1", port },
    via: "tcp",
    unreachableWhy: null,
    serverApiKey: null,
    enabled: true,
    loadPolicy: "always",
    desired: "running",
    state: "ready",
    lastError: null,
    changedSinceFailure: false,
    nextRestartAt: null, autoRestart: true, stateWrittenAt: null,
    parallel: 1,
    concurrency: 1,
    queueLimit: 4,
    idleMs: 600_000,
    readinessDeadlineMs: 5_000,
    createdS: 0,
    ...extra,
  };
}

/** A fake fleet: `current` is the registry; `freshRead` (when set) answers the gateway's fresh reads. */
function fakeFleet(first: GatewayModel) {
  const listeners = new Set<(s: ModelStopping) => void>();
  const state = {
    current: first,
    freshReads: 0,
    starts: 0,
    freshRead: null as null | (() => Promise<GatewayModel[]>),
  };
  const fleet: GatewayFleet = {
    async models(o = {}) {
      if (o.fresh) {
        state.freshReads++;
        if (state.freshRead) return state.freshRead();
      }
      return [state.current];
    },
    async start() {
      state.starts++;
      state.current = { ...state.current, state: "ready", desired: "running" };
      return { state: "ready", error: null };
    },
    changed: (ms) => sleep(Math.min(ms, 20)),
    onStopping(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    stop: async () => undefined,
    beginRequest: () => ({ served: () => undefined, end: () => undefined }),
    usage: () => ({ inFlight: 0, lastUsedAt: null, idleUnloadAt: null }),
    setIdleUnloadAt: () => undefined,
  };
  const notify = (why = "stopping (stop requested)") => {
    for (const cb of listeners) cb({ modelId: first.id, why });
  };
  return { fleet, state, notify };
}

async function gatewayOver(fleet: GatewayFleet, nodePath = false): Promise<string> {
  const gateway = createGateway({ fleet, guard: { allowedHosts: [], listenHost: "127.0.0.1", apiToken: undefined }, keys: null, idleSweepMs: 60_000 });
  const server = http.createServer((req, res) => void gateway.handle(req, res));
  if (!nodePath) attachFastPath(server, { gateway: () => gateway });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
    gateway.close();
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** A chat completion; resolves with its status and body, or "pending" if it has not ended within `ms`. */
function ask(url: string): { result: (ms: number) => Promise<{ status: number; body: string } | "pending"> } {
  const p = fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] }) }).then(
    async (r) => ({ status: r.status, body: await r.text() }),
    (err: unknown) => ({ status: -1, body: String(err) }),
  );
  return { result: (ms) => Promise.race([p, sleep(ms).then(() => "pending" as const)]) };
}

async function until(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

describe("a request that waited, and its server's stop notice (stand-in-holding-server, a fake fleet)", () => {
  it("a queued request whose model's server is noticed stopping while it waits: it looks again, is refused 409, and is never sent to the stopping server", async () => {
    const up = await standIn();
    const { fleet, state, notify } = fakeFleet(model(up.port));
    const url = await gatewayOver(fleet);
    const a = ask(url);
    await until("A at the server", () => up.arrived() === 1);
    const b = ask(url);
    await sleep(100); // B waits for the one place
    // A person's stop: recorded stopping, its notice ends A (its place goes to B).
    state.current = { ...state.current, state: "stopping", desired: "stopped" };
    notify();
    expect(await a.result(2000)).toEqual({ status: 503, body: expect.stringContaining("model_stopping") });
    expect(await b.result(2000)).toEqual({ status: 409, body: expect.stringContaining("model_stopped") });
    expect(up.arrived(), "B never reached the stopping server").toBe(1);
  });

  it("a read that began before a stop was recorded, the notice landing while it read: the request looks once more, and is not sent to the stopping server", async () => {
    const up = await standIn();
    const { fleet, state, notify } = fakeFleet(model(up.port, { state: "starting" }));
    const url = await gatewayOver(fleet);
    // The request waits for the model to be ready; its read (ensure-ready's) is on its way back when the stop of the
    // server it would be sent to is recorded and noticed: it answers "ready", as the registry was when it was read.
    state.freshRead = async () => {
      state.freshRead = null;
      const before = { ...state.current, state: "ready" };
      state.current = { ...state.current, state: "stopping", desired: "stopped" };
      notify();
      await sleep(20);
      return [before];
    };
    const b = ask(url);
    expect(await b.result(3000)).toEqual({ status: 409, body: expect.stringContaining("model_stopped") });
    expect(up.arrived(), "never sent to the stopping server").toBe(0);
  });

  it("a restart under a request with three queued: the queued ones keep their order (FIFO) to the new server, whatever order their reads come back in", async () => {
    const before = await standIn();
    const after = await standIn();
    const { fleet, state, notify } = fakeFleet(model(before.port));
    const url = await gatewayOver(fleet);
    const a = ask(url);
    await until("A at the server", () => before.arrived() === 1);
    const queued: ReturnType<typeof ask>[] = [];
    for (let i = 0; i < 3; i++) {
      queued.push(ask(url));
      await sleep(30); // B, C, D queue in this order
    }
    // The registry's reads (round trips to the main thread) come back in any order: the first one last.
    let reads = 0;
    state.freshRead = async () => {
      const n = reads++;
      await sleep(n === 0 ? 150 : 0);
      return [state.current];
    };
    // A restart: stopping, still wanted running; the new server is ready a little later.
    state.current = { ...state.current, state: "stopping", desired: "running" };
    notify("stopping (stopped to restart)");
    expect(await a.result(2000)).toEqual({ status: 503, body: expect.stringContaining("model_stopping") });
    await sleep(50);
    state.current = { ...state.current, state: "ready", upstream: { host: "127.0.0.1", port: after.port } };
    for (let i = 0; i < 3; i++) {
      await until(`queued request ${i} at the new server`, () => after.arrived() === i + 1);
      await sleep(50); // nothing else arrives meanwhile: one place
      expect(after.arrived()).toBe(i + 1);
      after.answer(i);
      expect(await queued[i]!.result(2000), `request ${i} (in arrival order) answered ${i}th`).toEqual({ status: 200, body: '{"ok":true}' });
    }
    expect(before.arrived(), "none reached the stopping server").toBe(1);
  });

  it("requests that waited for a place read nothing more when no stop came (the worker's round trip to the main thread, a query there)", async () => {
    const up = await standIn();
    const { fleet, state } = fakeFleet(model(up.port));
    const url = await gatewayOver(fleet);
    const reqs = [ask(url), ask(url), ask(url)];
    await until("the first at the server", () => up.arrived() === 1);
    await sleep(100);
    for (let i = 0; i < 3; i++) {
      await until(`request ${i} at the server`, () => up.arrived() === i + 1);
      up.answer(i);
    }
    for (const r of reqs) expect(await r.result(2000)).toEqual({ status: 200, body: '{"ok":true}' });
    expect(state.freshReads).toBe(0);
  });
});

describe("a stream between two events when its server stops, on both client paths (stand-in-stream-then-hold)", () => {
  it.each([false, true])("nodePath=%s: the client gets the first event, then the error event, and the answer ends", async (nodePath) => {
    // stand-in-stream-then-hold: a stream's head and one event, then nothing (a stopping llama-server).
    const server = net.createServer((s) => {
      s.on("error", () => undefined);
      s.once("data", () => s.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\nf\r\ndata: {"n":1}\n\n\r\n'));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => server.close());
    const { fleet, notify } = fakeFleet(model((server.address() as net.AddressInfo).port));
    const url = await gatewayOver(fleet, nodePath);
    const r = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "m", stream: true, messages: [] }) });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value!).toString()).toBe('data: {"n":1}\n\n');
    notify();
    let rest = "";
    for (;;) {
      const x = await Promise.race([reader.read(), sleep(2000).then(() => null)]);
      if (x === null) throw new Error(`no end within 2 s; so far: ${rest}`);
      if (x.done) break;
      rest += Buffer.from(x.value).toString();
    }
    expect(rest).toMatch(/^data: \{"error":\{"message":"model \\"m\\" is stopping \(stop requested\): the request was ended with its server; sent again, it is answered once the model runs, or told why not".*"code":"model_stopping"\}\}\n\n$/);
  });
});
