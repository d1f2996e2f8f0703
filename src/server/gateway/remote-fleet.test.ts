/**
 * remote-fleet.ts keeps the main thread's answer to a look at every model as
 * its model list, not the answer to a look at one (`{ fresh: true, only }`,
 * ensure-ready.ts's first look): otherwise, for MODELS_MAX_AGE_MS, GET
 * /v1/models listed that model alone and every other model's request paid a
 * second call.
 */
import { EventEmitter } from "node:events";
import { expect, it } from "vitest";
import type { GatewayModel } from "./fleet-port";
import { createRemoteFleet, NOTES_EVERY_MS } from "./remote-fleet";
import type { MainMessage, WorkerMessage } from "./worker-protocol";

/** A stand-in for the worker's port to the main thread: records each message the worker sends (a batch's items one by one). */
function recordingPort(): { port: EventEmitter & { postMessage(m: WorkerMessage): void }; sent: WorkerMessage[] } {
  const port = new EventEmitter() as EventEmitter & { postMessage(m: WorkerMessage): void };
  const sent: WorkerMessage[] = [];
  port.postMessage = (m) => {
    if (m.t === "batch") sent.push(...m.items);
    else sent.push(m);
  };
  return { port, sent };
}

it("does not take a one-model look for the model list", async () => {
  const all = [{ id: "a", name: "alpha" }, { id: "b", name: "beta" }] as unknown as GatewayModel[];
  const port = new EventEmitter() as EventEmitter & { postMessage(m: WorkerMessage): void };
  const calls: unknown[] = [];
  // stand-in main thread: answers models() as fleet-host.ts + fleet-adapter.ts do (readOne for `only`)
  port.postMessage = (m) => {
    if (m.t !== "call") return;
    calls.push(m.args[0]);
    const o = m.args[0] as { only?: string };
    const value = o.only !== undefined ? all.filter((x) => x.id === o.only) : all;
    queueMicrotask(() => port.emit("message", { t: "reply", id: m.id, ok: true, value } satisfies MainMessage));
  };
  const remote = createRemoteFleet(port as unknown as Parameters<typeof createRemoteFleet>[0], { channelSocket: "/nonexistent" });
  expect((await remote.models()).map((m) => m.name)).toEqual(["alpha", "beta"]);
  // ensure-ready's first look at a model it waits for
  await remote.models({ fresh: true, only: "a" });
  expect((await remote.models()).map((m) => m.name)).toEqual(["alpha", "beta"]);
  remote.close();
});

it("tells the main thread a request's being served (on its begin note when that still waits in the batch); a request never served moves no last use", async () => {
  const { port, sent } = recordingPort();
  let clock = 1_000;
  const remote = createRemoteFleet(port as unknown as Parameters<typeof createRemoteFleet>[0], { channelSocket: "/nonexistent", now: () => clock });
  const flushed = () => new Promise((r) => setTimeout(r, NOTES_EVERY_MS + 20));

  // Served in the tick it began (a ready model, a free place): one begin note that says so.
  const quick = remote.beginRequest("a");
  quick.served();
  clock = 1_010;
  quick.end();
  await flushed();
  expect(sent).toEqual([{ t: "begin", token: 1, modelId: "a", served: true }, { t: "end", token: 1 }]);
  expect(remote.usage("a")).toEqual({ inFlight: 0, lastUsedAt: 1_010, idleUnloadAt: null });

  // Refused (409, 429, 503): counted while it was in flight, no last use.
  sent.length = 0;
  clock = 2_000;
  const refused = remote.beginRequest("a");
  expect(remote.usage("a")).toEqual({ inFlight: 1, lastUsedAt: 1_010, idleUnloadAt: null });
  refused.end();
  refused.served();
  await flushed();
  expect(sent).toEqual([{ t: "begin", token: 2, modelId: "a" }, { t: "end", token: 2 }]);
  expect(remote.usage("a")).toEqual({ inFlight: 0, lastUsedAt: 1_010, idleUnloadAt: null });

  // Served after a wait (a start, a place): its own note, after the begin went.
  sent.length = 0;
  const waited = remote.beginRequest("a");
  await flushed();
  clock = 3_000;
  waited.served();
  clock = 3_500;
  waited.end();
  await flushed();
  expect(sent).toEqual([{ t: "begin", token: 3, modelId: "a" }, { t: "served", token: 3 }, { t: "end", token: 3 }]);
  expect(remote.usage("a").lastUsedAt).toBe(3_500);
  remote.close();
});

it("a stop notice from the main thread reaches every listener; one that throws is told to the main thread as a warning with its error, and the worker goes on", async () => {
  const { port, sent } = recordingPort();
  const remote = createRemoteFleet(port as unknown as Parameters<typeof createRemoteFleet>[0], { channelSocket: "/nonexistent" });
  const heard: string[] = [];
  remote.onStopping?.(() => {
    throw new Error("the request's socket is gone");
  });
  const off = remote.onStopping?.((s) => heard.push(`${s.modelId}: ${s.why}`));
  port.emit("message", { t: "stopping", stopping: { modelId: "a", why: "stopping (stopped on request)" } } satisfies MainMessage);
  expect(heard).toEqual(["a: stopping (stopped on request)"]);
  await new Promise((r) => setTimeout(r, NOTES_EVERY_MS + 20));
  expect(sent).toEqual([{ t: "log", level: "warn", msg: "ending the requests of a stopping server failed", data: { error: "the request's socket is gone" } }]);
  off?.();
  port.emit("message", { t: "stopping", stopping: { modelId: "a", why: "stopping (stopped on request)" } } satisfies MainMessage);
  expect(heard).toHaveLength(1);
  remote.close();
});
