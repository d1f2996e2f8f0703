import { describe, expect, it } from "vitest";
import { createReadyWaiter, HOST_UNREACHABLE_RETRY_S } from "./ensure-ready";
import type { GatewayFleet, GatewayModel } from "./fleet-port";
import { errorHeaders, type GatewayError } from "./openai-error";
import { readinessStep, RESTART_GAP_WAIT_MS } from "./readiness";

const base: GatewayModel = {
  id: "m1", name: "tiny", alias: null, hostId: "h", host: "local", upstream: { host: "127.0.0.1", port: 8080 }, unreachableWhy: null,
  serverApiKey: null, enabled: true, loadPolicy: "on-demand", desired: "stopped", state: "stopped", lastError: null, nextRestartAt: null, autoRestart: true, stateWrittenAt: null,
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

describe("an exited model with auto-restart on and no restart planned", () => {
  const NOW = 1_000_000;
  const exited: GatewayModel = { ...base, loadPolicy: "always", desired: "running", state: "exited", lastError: "exited (crashed: killed by SIGKILL)", nextRestartAt: null, autoRestart: true };
  /** A registry that answers `rows` in turn (the last one from then on), on a clock each wait moves by its timeout. */
  const scripted = (rows: GatewayModel[]) => {
    let t = NOW;
    let reads = 0;
    const fleet = port(rows[0]!, rows[0]!);
    fleet.models = async () => [rows[Math.min(reads++, rows.length - 1)]!];
    fleet.changed = async (ms) => {
      t += ms;
    };
    return { waiter: createReadyWaiter(fleet, () => t), waited: () => t - NOW };
  };
  const outcome = (p: Promise<GatewayModel>) =>
    p.then(
      (m) => m,
      (e: unknown) => e as GatewayError,
    );

  it("exited long ago (auto-restart turned on after the crash, or the app restarted before the restart began: nothing restarts it) is told 503 model_failed at once, not waited for until the readiness deadline", async () => {
    const old = { ...exited, stateWrittenAt: NOW - 60_000 };
    const { waiter, waited } = scripted([old]);
    const err = (await outcome(waiter.ensureReady(old, new AbortController().signal))) as GatewayError;
    expect([err.status, err.code, errorHeaders(err)["x-should-retry"]]).toEqual([503, "model_failed", "false"]);
    expect(err.message).toBe('model "tiny" exited: exited (crashed: killed by SIGKILL); no restart is planned for it: start it with its Start button in the dashboard or `npm run synapse -- start tiny`');
    expect(waited()).toBe(0);
  });

  it("written a moment ago (a restart's due time before its start) is waited for and served once the restart is ready", async () => {
    const gap = { ...exited, stateWrittenAt: NOW - 20 };
    const { waiter } = scripted([gap, gap, { ...gap, state: "starting" }, { ...gap, state: "ready", lastError: null }]);
    const m = (await outcome(waiter.ensureReady(gap, new AbortController().signal))) as GatewayModel;
    expect(m.state).toBe("ready");
  });

  it("written a moment ago, with nothing after it, is waited for a few seconds, then told 503 model_failed, not model_not_ready at the readiness deadline", async () => {
    const gap = { ...exited, stateWrittenAt: NOW - 20 };
    const { waiter, waited } = scripted([gap]);
    const err = (await outcome(waiter.ensureReady(gap, new AbortController().signal))) as GatewayError;
    expect([err.status, err.code]).toEqual([503, "model_failed"]);
    expect(waited()).toBeLessThanOrEqual(RESTART_GAP_WAIT_MS);
  });
});

describe("a model on an ssh host whose link is down", () => {
  const remote: GatewayModel = { ...base, host: "mac", hostLink: "ssh" };
  const DROP = "host 'mac' (me@10.0.0.2:22): connect ECONNREFUSED 10.0.0.2:22";
  const settle = (p: Promise<GatewayModel>) =>
    p.then(
      (m) => m,
      (e: unknown) => e as GatewayError,
    );

  it("idle on-demand: 502 host_unreachable with the link's error at once, no start made (a trial's got 503 model_start_failed, and the next request hung for the readiness deadline)", async () => {
    const fleet = port(remote, remote);
    const asked: string[] = [];
    fleet.linkDown = async (hostId) => (asked.push(hostId), { error: DROP, nextAttemptAt: null });
    const err = (await settle(createReadyWaiter(fleet).ensureReady(remote, new AbortController().signal))) as GatewayError;
    expect([err.status, err.type, err.code]).toEqual([502, "server_error", "host_unreachable"]);
    expect(err.message).toBe(`model "tiny" cannot be started: the gateway cannot reach its host mac: ${DROP}; a request sent again in 5 s or later makes the link try again`);
    expect(errorHeaders(err)).toMatchObject({ "Retry-After": String(HOST_UNREACHABLE_RETRY_S) });
    expect(asked).toEqual(["h"]);
    expect(fleet.starts).toEqual([]);
  });

  it("always, wanted running and not yet started (the reconcile loop waits for the link): 502 at once, not model_not_ready after the deadline", async () => {
    const queued: GatewayModel = { ...remote, loadPolicy: "always", desired: "running" };
    const fleet = port(queued, queued);
    fleet.linkDown = async () => ({ error: DROP, nextAttemptAt: Date.now() + 30_000 });
    let waits = 0;
    fleet.changed = async () => void waits++;
    const err = (await settle(createReadyWaiter(fleet).ensureReady(queued, new AbortController().signal))) as GatewayError;
    expect([err.status, err.code]).toEqual([502, "host_unreachable"]);
    expect(err.message).toContain('model "tiny" cannot be served: the gateway cannot reach its host mac');
    expect(waits).toBe(0);
  });

  it("a link that comes back at the request's asking: started and served", async () => {
    const fleet = port(remote, remote);
    fleet.linkDown = async () => null;
    let calls = 0;
    fleet.models = async () => (calls++ < 1 ? [remote] : [{ ...remote, state: "ready", desired: "running" }]);
    expect((await createReadyWaiter(fleet).ensureReady(remote, new AbortController().signal)).state).toBe("ready");
    expect(fleet.starts).toEqual(["m1"]);
  });

  it("a start that could not reach the host: every request that waited for it gets 502 host_unreachable with the link's error", async () => {
    const fleet = port(remote, remote);
    fleet.linkDown = async () => null;
    let release: () => void = () => undefined;
    fleet.start = () => new Promise((resolve) => (release = () => resolve({ state: "stopped", error: `host 'mac' is unreachable: ${DROP}`, unreachable: true })));
    const waiter = createReadyWaiter(fleet);
    const both = Promise.all([settle(waiter.ensureReady(remote, new AbortController().signal)), settle(waiter.ensureReady(remote, new AbortController().signal))]);
    await new Promise((r) => setTimeout(r, 10));
    release();
    const errs = (await both) as GatewayError[];
    for (const err of errs) {
      expect([err.status, err.code]).toEqual([502, "host_unreachable"]);
      expect(err.message).toContain(DROP);
    }
  });
});
