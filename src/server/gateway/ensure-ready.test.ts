import { describe, expect, it } from "vitest";
import { createReadyWaiter } from "./ensure-ready";
import type { GatewayFleet, GatewayModel } from "./fleet-port";
import { errorHeaders, type GatewayError } from "./openai-error";
import { readinessStep } from "./readiness";

const base: GatewayModel = {
  id: "m1", name: "tiny", alias: null, hostId: "h", host: "local", upstream: { host: "127.0.0.1", port: 8080 }, unreachableWhy: null,
  serverApiKey: null, enabled: true, loadPolicy: "on-demand", desired: "stopped", state: "stopped", lastError: null, nextRestartAt: null, autoRestart: true,
  parallel: 1, concurrency: 1, queueLimit: 8, idleMs: 60_000, readinessDeadlineMs: 5_000, createdS: 0, changedSinceFailure: false,
};

/** The port over an in-memory registry: `snapshot` is what the gateway's cache holds, `now` what the registry says now. */
function port(snapshot: GatewayModel, now: GatewayModel): GatewayFleet & { starts: string[] } {
  const starts: string[] = [];
  return {
    starts,
    models: async (o) => [o?.fresh ? now : snapshot],
    // As the fleet's start does (fleet-adapter.ts: startIf): a start is made only if the registry, as the start
    // reads it, still calls for one.
    start: async (id) => {
      if (readinessStep(now, Date.now()).kind !== "start") return { state: now.state, error: null, skipped: true };
      starts.push(id);
      return { state: "ready", error: null };
    },
    changed: async () => undefined,
    stop: async () => undefined,
    beginRequest: () => ({ served: () => undefined, end: () => undefined }),
    usage: () => ({ inFlight: 0, lastUsedAt: null, idleUnloadAt: null }),
    setIdleUnloadAt: () => undefined,
  };
}

describe("ensureReady decides starts and refusals on the registry as it is now", () => {
  it("a model disabled a moment ago (the snapshot still says enabled) is refused 409 and not started", async () => {
    const fleet = port(base, { ...base, enabled: false });
    const waiter = createReadyWaiter(fleet);
    await expect(waiter.ensureReady(base, new AbortController().signal)).rejects.toMatchObject({ status: 409, code: "model_disabled" });
    expect(fleet.starts).toEqual([]);
  });

  it("an always model disabled a moment ago is refused as disabled, not as stopped", async () => {
    const always = { ...base, loadPolicy: "always" as const };
    const fleet = port(always, { ...always, enabled: false });
    await expect(createReadyWaiter(fleet).ensureReady(always, new AbortController().signal)).rejects.toMatchObject({ status: 409, code: "model_disabled" });
  });

  it("an enabled on-demand model is started once and served", async () => {
    const fleet = port(base, base);
    let calls = 0;
    const ready = { ...base, state: "ready", desired: "running" };
    fleet.models = async () => (calls++ < 1 ? [base] : [ready]);
    const m = await createReadyWaiter(fleet).ensureReady(base, new AbortController().signal);
    expect(m.state).toBe("ready");
    expect(fleet.starts).toEqual(["m1"]);
  });
});

describe("a start refused for memory tells clients whether waiting can help", () => {
  const refusedBy = (memoryMayFitLater?: false) => {
    const fleet = port(base, base);
    fleet.start = async () => ({ state: "stopped", error: "huge needs 39.0 MiB …", memoryRefusal: "huge needs 39.0 MiB …", ...(memoryMayFitLater === false ? { memoryMayFitLater } : {}) });
    return createReadyWaiter(fleet).ensureReady(base, new AbortController().signal).then(
      () => null,
      (e: unknown) => e as GatewayError,
    );
  };

  it("nothing that may stop by itself would make room: x-should-retry false, no Retry-After", async () => {
    const err = (await refusedBy(false))!;
    expect([err.status, err.code]).toEqual([503, "insufficient_memory"]);
    expect(errorHeaders(err)).toMatchObject({ "x-should-retry": "false" });
    expect(errorHeaders(err)).not.toHaveProperty("Retry-After");
    expect(err.message).toMatch(/; retrying will not help: no model that may stop by itself/);
  });

  it("room may come (on-demand models unload, a stop under way): Retry-After, and retries allowed", async () => {
    const err = (await refusedBy())!;
    expect([err.status, err.code]).toEqual([503, "insufficient_memory"]);
    expect(errorHeaders(err)).toMatchObject({ "Retry-After": "30" });
    expect(errorHeaders(err)).not.toHaveProperty("x-should-retry");
  });
});
