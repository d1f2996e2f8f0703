/**
 * A GatewayFleet of one ready model at `upstream` (a llama-server started by
 * the benchmark), for the benchmarks that run the gateway's code without the
 * app (gateway-micro.ts, relay-serve.ts): no registry, no starts, in-flight
 * counts and last use kept by a ServerEntry as the fleet keeps them.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { GatewayFleet, GatewayModel } from "../src/server/gateway/fleet-port.ts";
import { ServerEntry } from "../src/server/services/fleet/server-entry.ts";

export function oneModelFleet(name: string, upstream: { host: string; port: number }, slots: { parallel: number; concurrency: number; queueLimit: number }): GatewayFleet {
  const model: GatewayModel = {
    id: "m", name, alias: null, hostId: "h", host: "local", upstream, unreachableWhy: null, serverApiKey: null, enabled: true,
    loadPolicy: "always", desired: "running", state: "ready", lastError: null, nextRestartAt: null, autoRestart: true, stateWrittenAt: null, ...slots, idleMs: 600_000, readinessDeadlineMs: 30_000, createdS: 0, changedSinceFailure: false,
  };
  const entry = new ServerEntry(model.id, model.hostId, model.name);
  return {
    models: async () => [model],
    modelsNow: () => [model],
    start: async () => ({ state: "ready", error: null }),
    changed: (t) => sleep(t),
    stop: async () => undefined,
    beginRequest: () => {
      const use = entry.beginRequest();
      const end = () => use.end(Date.now());
      // Callable too: a --baseline gateway from before InFlightRequest ends its request by calling what it got.
      return Object.assign(end, { served: () => use.served(Date.now()), end });
    },
    usage: () => ({ inFlight: entry.inFlight, lastUsedAt: entry.lastUsedAt, idleUnloadAt: entry.idleUnloadAt }),
    setIdleUnloadAt: (_id, at) => {
      entry.idleUnloadAt = at;
    },
  };
}
