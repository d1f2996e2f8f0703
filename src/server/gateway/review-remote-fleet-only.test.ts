/**
 * Review finding: remote-fleet.ts's models() keeps whatever a call returned
 * as the current list, also the answer to `{ fresh: true, only: id }` (the
 * adapter's readOne: that model's row alone, ensure-ready.ts's first look).
 * For MODELS_MAX_AGE_MS after it, models() answers a list of one model:
 * GET /v1/models lists only that model, and every other model's request
 * pays a second, fresh call (resolve()'s fallback).
 */
import { EventEmitter } from "node:events";
import { expect, it } from "vitest";
import type { GatewayModel } from "./fleet-port";
import { createRemoteFleet } from "./remote-fleet";
import type { MainMessage, WorkerMessage } from "./worker-protocol";

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
  const remote = createRemoteFleet(port, { channelSocket: "/nonexistent" });
  expect((await remote.models()).map((m) => m.name)).toEqual(["alpha", "beta"]);
  // ensure-ready's first look at a model it waits for
  await remote.models({ fresh: true, only: "a" });
  expect((await remote.models()).map((m) => m.name)).toEqual(["alpha", "beta"]);
  remote.close();
});
