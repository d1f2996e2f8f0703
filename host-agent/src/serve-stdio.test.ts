import { PassThrough, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import type { AgentApi, AgentEvent, Method, ServerStatus } from "./protocol.ts";
import { AgentError, parseParams } from "./protocol.ts";
import { serveJsonLines, type ServeLog } from "./serve-stdio.ts";

type Handler = (params: unknown, signal?: AbortSignal) => Promise<unknown>;

/** An in-memory AgentApi: scripted handlers per method, events pushed by the test. */
function memoryAgent(handlers: Partial<Record<Method, Handler>>) {
  const listeners = new Set<(e: AgentEvent) => void>();
  const api: AgentApi = {
    async call(method, params, options) {
      const handler = handlers[method];
      if (!handler) throw new AgentError({ code: "NOT_FOUND", message: `no handler for ${method}` });
      return (await handler(parseParams(method, params), options?.signal)) as never;
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return { api, emit: (e: AgentEvent) => listeners.forEach((l) => l(e)), listenerCount: () => listeners.size };
}

function status(id: string, state: ServerStatus["state"] = "ready"): ServerStatus {
  return { id, state, pid: null, port: null, startedAt: null, readyAt: null, exitCode: null, signal: null, reason: null, logPath: null, specHash: null, logTail: [] };
}

function collectLines(stream: PassThrough) {
  const lines: any[] = [];
  let rest = "";
  stream.on("data", (chunk: Buffer) => {
    rest += chunk.toString("utf8");
    let nl: number;
    while ((nl = rest.indexOf("\n")) !== -1) {
      lines.push(JSON.parse(rest.slice(0, nl)));
      rest = rest.slice(nl + 1);
    }
  });
  return lines;
}

function recordingLog() {
  const entries: { level: string; msg: string; fields?: Record<string, unknown> }[] = [];
  const log: ServeLog = (level, msg, fields) => entries.push({ level, msg, fields });
  return { log, entries };
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, timeoutMs = 2000) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await delay(5);
  }
}

describe("serveJsonLines", () => {
  it("runs requests concurrently and matches replies by id", async () => {
    const { api } = memoryAgent({
      status: async (p) => {
        const ids = (p as { ids?: string[] }).ids ?? [];
        if (ids[0] === "slow") await delay(80);
        return ids.map((id) => status(id));
      },
    });
    const input = new PassThrough();
    const output = new PassThrough();
    const lines = collectLines(output);
    const done = serveJsonLines(api, input, output, { log: recordingLog().log });
    input.write(`${JSON.stringify({ type: "request", id: 1, method: "status", params: { ids: ["slow"] } })}\n`);
    input.write(`${JSON.stringify({ type: "request", id: 2, method: "status", params: { ids: ["fast"] } })}\n`);
    input.end();
    await done;
    expect(lines.map((l) => l.id)).toEqual([2, 1]);
    expect(lines[0]).toMatchObject({ type: "reply", id: 2, ok: true, result: [{ id: "fast" }] });
    expect(lines[1]).toMatchObject({ type: "reply", id: 1, ok: true, result: [{ id: "slow" }] });
  });

  it("answers invalid requests with BAD_REQUEST and survives garbage", async () => {
    const { api } = memoryAgent({ status: async () => [] });
    const input = new PassThrough();
    const output = new PassThrough();
    const lines = collectLines(output);
    const { log, entries } = recordingLog();
    const done = serveJsonLines(api, input, output, { log });
    input.write("this is not json\n");
    input.write(Buffer.from([0xff, 0xfe, 0x0a]));
    input.write(`${JSON.stringify({ type: "request", id: 7, method: "format-disk", params: {} })}\n`);
    input.write(`${JSON.stringify({ type: "request", id: 8, method: "status", params: { ids: ["bad id!"] } })}\n`);
    input.write(`${JSON.stringify({ nothing: true })}\n`);
    input.write("\n\r\n");
    input.write(`${JSON.stringify({ type: "request", id: 9, method: "status", params: {} })}\n`);
    input.end();
    await done;
    const byId = new Map(lines.map((l) => [l.id, l]));
    expect(byId.get(7)).toMatchObject({ ok: false, error: { code: "BAD_REQUEST" } });
    expect(byId.get(7).error.message).toContain("request.method");
    expect(byId.get(8)).toMatchObject({ ok: false, error: { code: "BAD_REQUEST", issues: [{ path: "ids.0" }] } });
    expect(byId.get(9)).toMatchObject({ ok: true, result: [] });
    expect(lines).toHaveLength(3);
    expect(entries.filter((e) => e.msg.includes("not JSON"))).toHaveLength(2);
    expect(entries.some((e) => e.msg.includes("without a usable id"))).toBe(true);
  });

  it("passes AgentError codes, issues and data through intact", async () => {
    const { api } = memoryAgent({
      stop: async () => {
        throw new AgentError({ code: "CONFLICT", message: "port 8081 is held by pid 4242 (python3)", data: { pid: 4242 } });
      },
      stopAll: async () => {
        throw new Error("disk on fire");
      },
    });
    const input = new PassThrough();
    const output = new PassThrough();
    const lines = collectLines(output);
    const done = serveJsonLines(api, input, output, { log: recordingLog().log });
    input.write(`${JSON.stringify({ type: "request", id: 1, method: "stop", params: { id: "a" } })}\n`);
    input.end(`${JSON.stringify({ type: "request", id: 2, method: "stopAll", params: {} })}\n`);
    await done;
    const byId = new Map(lines.map((l) => [l.id, l]));
    expect(byId.get(1).error).toEqual({ code: "CONFLICT", message: "port 8081 is held by pid 4242 (python3)", data: { pid: 4242 } });
    expect(byId.get(2).error).toEqual({ code: "INTERNAL", message: "disk on fire" });
  });

  it("drops an oversize line without buffering it, then carries on", async () => {
    const { api } = memoryAgent({ status: async () => [] });
    const input = new PassThrough();
    const output = new PassThrough();
    const lines = collectLines(output);
    const { log, entries } = recordingLog();
    const done = serveJsonLines(api, input, output, { log, maxLineBytes: 1024 });
    // Sent in pieces, as a network would, so the limit is checked across chunks.
    for (let i = 0; i < 10; i++) input.write("x".repeat(500));
    input.write(`\n${JSON.stringify({ type: "request", id: 3, method: "status", params: {} })}\n`);
    input.end();
    await done;
    expect(lines).toEqual([{ type: "reply", id: 3, ok: true, result: [] }]);
    expect(entries.filter((e) => e.msg.includes("longer than the limit"))).toHaveLength(1);
  });

  it("handles a last line without a newline", async () => {
    const { api } = memoryAgent({ status: async () => [] });
    const input = new PassThrough();
    const output = new PassThrough();
    const lines = collectLines(output);
    const done = serveJsonLines(api, input, output, { log: recordingLog().log });
    input.end(JSON.stringify({ type: "request", id: 4, method: "status", params: {} }));
    await done;
    expect(lines).toEqual([{ type: "reply", id: 4, ok: true, result: [] }]);
  });

  it("forwards events while the session lasts and unsubscribes at the end", async () => {
    const agent = memoryAgent({});
    const input = new PassThrough();
    const output = new PassThrough();
    const lines = collectLines(output);
    const done = serveJsonLines(agent.api, input, output, { log: recordingLog().log });
    expect(agent.listenerCount()).toBe(1);
    agent.emit({ type: "event", kind: "state", at: "2024-01-01T00:00:00.000Z", status: status("m1", "starting") });
    agent.emit({ type: "event", kind: "log", at: "2024-01-01T00:00:00.000Z", id: "m1", line: "loading" });
    input.end();
    await done;
    expect(agent.listenerCount()).toBe(0);
    await until(() => lines.length === 2);
    expect(lines.map((l) => l.kind)).toEqual(["state", "log"]);
  });

  it("pauses reading and drops log events (never replies or state) while output is backpressured", async () => {
    const agent = memoryAgent({ status: async () => [] });
    const input = new PassThrough();
    // An output that nobody drains until the test says so.
    const written: string[] = [];
    let release: (() => void) | undefined;
    const output = new Writable({
      highWaterMark: 64,
      write(chunk: Buffer, _enc, cb) {
        written.push(chunk.toString("utf8"));
        if (release === undefined) release = () => cb();
        else cb();
      },
    });
    const { log, entries } = recordingLog();
    const done = serveJsonLines(agent.api, input, output, { log });
    agent.emit({ type: "event", kind: "state", at: "t", status: status("m1", "starting") });
    // The first write is stuck; output is now over its high-water mark.
    for (let i = 0; i < 50; i++) agent.emit({ type: "event", kind: "log", at: "t", id: "m1", line: `line ${i}` });
    agent.emit({ type: "event", kind: "state", at: "t", status: status("m1", "ready") });
    input.write(`${JSON.stringify({ type: "request", id: 1, method: "status", params: {} })}\n`);
    await delay(30);
    expect(input.isPaused()).toBe(true);
    const releaseNow = release;
    release = () => {};
    releaseNow?.();
    input.end();
    await done;
    const messages = written.join("").trim().split("\n").map((l) => JSON.parse(l));
    expect(messages.filter((m) => m.kind === "state")).toHaveLength(2);
    expect(messages.filter((m) => m.kind === "log").length).toBeLessThan(50);
    expect(messages.filter((m) => m.type === "reply")).toEqual([{ type: "reply", id: 1, ok: true, result: [] }]);
    expect(entries.some((e) => e.msg.includes("dropped log events"))).toBe(true);
  });

  it("bounds the calls in flight by pausing input", async () => {
    const gates: (() => void)[] = [];
    const { api } = memoryAgent({ status: () => new Promise((r) => gates.push(() => r([]))) });
    const input = new PassThrough();
    const output = new PassThrough();
    const lines = collectLines(output);
    const done = serveJsonLines(api, input, output, { log: recordingLog().log, maxInFlight: 2 });
    for (let id = 1; id <= 5; id++) input.write(`${JSON.stringify({ type: "request", id, method: "status", params: {} })}\n`);
    await until(() => gates.length >= 2);
    await delay(20);
    // Lines already in one chunk are parsed, but no new chunk is read past the bound.
    expect(input.isPaused()).toBe(true);
    input.end();
    while (lines.length < 5) {
      gates.shift()?.();
      await delay(5);
    }
    await done;
    expect(lines.map((l) => l.id).sort()).toEqual([1, 2, 3, 4, 5]);
  });

  it("aborts calls still running after input ends and the drain deadline passes", async () => {
    let sawAbort = false;
    const { api } = memoryAgent({
      start: (_p, signal) =>
        new Promise((_resolve, reject) => {
          signal?.addEventListener("abort", () => {
            sawAbort = true;
            reject(signal.reason);
          });
        }),
    });
    const input = new PassThrough();
    const output = new PassThrough();
    collectLines(output);
    const done = serveJsonLines(api, input, output, { log: recordingLog().log, drainTimeoutMs: 50 });
    const spec = { id: "m", modelPath: "/m.gguf", port: 8080, ctxSize: 0, gpuLayers: 0, threads: 1, batchSize: 1, ubatchSize: 1, flashAttn: "off", loadMode: "mmap", parallel: 1, readinessDeadlineMs: 1000, stopGraceMs: 0 };
    input.end(`${JSON.stringify({ type: "request", id: 1, method: "start", params: { spec } })}\n`);
    const started = Date.now();
    await done;
    expect(sawAbort).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("ends when output closes even if input stays open", async () => {
    const agent = memoryAgent({});
    const input = new PassThrough();
    const output = new PassThrough();
    const done = serveJsonLines(agent.api, input, output, { log: recordingLog().log });
    output.destroy();
    await done;
    expect(agent.listenerCount()).toBe(0);
  });
});
