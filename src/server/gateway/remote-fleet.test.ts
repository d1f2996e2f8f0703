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
  const remote = createRemoteFleet(port as unknown as Parameters<typeof createRemoteFleet>[0], { channelSocket: "/nonexistent" });
  expect((await remote.models()).map((m) => m.name)).toEqual(["alpha", "beta"]);
  // ensure-ready's first look at a model it waits for
  await remote.models({ fresh: true, only: "a" });
  expect((await remote.models()).map((m) => m.name)).toEqual(["alpha", "beta"]);
  remote.close();
});
