/**
 * Every stop or exit has a typed cause, in the status the API returns and in
 * the event text, whether or not the host's agent sends one: with an agent
 * older than `stop-cause` (stand-in-older-agent: the real agent with the
 * additive fields taken away) the app infers it, and says to update the
 * agent on that host.
 */
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { AGENT_FEATURES } from "synapse-host-agent/protocol";
import { createHostAgent } from "../../../../host-agent/src/agent";
import { agentOptions } from "../../../../host-agent/test/harness/fixtures";
import { fleetFixture, statusOf, waitFor, type FleetFixture } from "./testing/fixture";
import type { HostLink } from "synapse-host-agent/link";
import type { LinkPool } from "./links";
import type { LinkStateChange } from "synapse-host-agent/link";
import { standInAgentsBefore, standInOlderAgents, viewLinks } from "./testing/stand-in-older-agent";

/**
 * A fleet (kept in `fx` for afterEach) with one model `name` running, its agent's hello read, and every
 * `stop` / `stopAll` call from here on recorded in `stops`; `older`: through the stand-in older agent.
 */
async function runningWithStopsRecorded(older: boolean, name: string) {
  const stops: { method: string; params: Record<string, unknown>; result: unknown }[] = [];
  const f = (fx = await fleetFixture({ viewLinks: (pool) => spyOnStops(older ? standInOlderAgents(pool) : pool, stops) }));
  const model = await f.addModel(name);
  await f.fleet.startAll({ wait: true });
  await f.fleet.reconcile(f.host.id); // the agent's hello (its features) is read
  return { f, stops, model };
}

/** The pool with each link's `stop` and `stopAll` calls recorded (method, params and result) in `into`. */
function spyOnStops(pool: LinkPool, into: { method: string; params: Record<string, unknown>; result: unknown }[]): LinkPool {
  return viewLinks(pool, (link) => {
    const call = link.call.bind(link) as (m: string, p: unknown, o?: unknown) => Promise<unknown>;
    return Object.assign(Object.create(link) as HostLink, {
      call: async (method: string, params: unknown, options?: unknown) => {
        const result = await call(method, params, options);
        if (method === "stop" || method === "stopAll") into.push({ method, params: params as Record<string, unknown>, result });
        return result;
      },
    });
  });
}

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

async function stopOnHost(f: FleetFixture) {
  // The host's own CLI: a second agent on the app's state folder stops everything (stop-metal-servers).
  const cli = createHostAgent(agentOptions(f.dirs, f.bin));
  try {
    await cli.ready;
    await cli.call("stopAll", {});
  } finally {
    cli.close();
  }
}

for (const older of [true, false]) {
  describe(older ? "with an agent older than stop-cause (stand-in-older-agent)" : "with this checkout's agent", () => {
    it("crash, requested, host-stop: each recorded as the server's cause, shown in the status and the events; running clears it", async () => {
      const f = (fx = await fleetFixture({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 200 } }, ...(older ? { viewLinks: standInOlderAgents } : {}) }));
      const alpha = await f.addModel("alpha");
      const beta = await f.addModel("beta");
      const started = await f.fleet.startAll({ wait: true });
      expect((await f.fleet.status()).map((s) => [s.name, s.state, s.cause])).toEqual([
        ["alpha", "ready", null],
        ["beta", "ready", null],
      ]);

      // The one object per model the gateway shares: the fleet keeps it current.
      const entry = await f.fleet.entry(alpha.id);
      const alphaPid = started.find((r) => r.name === "alpha")!.pid!;
      expect(entry).toMatchObject({ name: "alpha", state: "ready", pid: alphaPid, cause: null, inFlight: 0, lastUsedAt: null, idleTimer: null, op: null });
      expect(await f.fleet.entry(alpha.id)).toBe(entry);
      await expect(f.fleet.entry("no-such-model")).rejects.toMatchObject({ code: "NOT_FOUND" });

      await f.fleet.reconcile(f.host.id);
      const agent = f.fleet.agent(f.host.id);
      if (older) {
        // It names no features at all: every one is missing, stop-cause among them.
        expect(agent!.missing).toEqual([...AGENT_FEATURES]);
        expect(agent!.advice).toMatch(/^update the agent on local: .*stop-cause/);
      } else {
        expect(agent).toMatchObject({ missing: [], advice: null });
      }

      const stopped = await f.fleet.stop(beta.id);
      expect(stopped.state).toBe("stopped");
      expect(await statusOf(f, "beta")).toMatchObject({ state: "stopped", cause: "requested" });

      process.kill(alphaPid, "SIGKILL");
      const crashed = await waitFor("alpha exited", async () => {
        const s = await statusOf(f, "alpha");
        return s.state === "exited" ? s : null;
      }, 5000, 10);
      expect(crashed.cause).toBe("crash");
      expect(entry.ended).toMatchObject({ pid: alphaPid });
      await waitFor("alpha restarted", async () => (await statusOf(f, "alpha")).state === "ready", 20_000);
      expect((await statusOf(f, "alpha")).cause).toBeNull();

      await stopOnHost(f);
      const onHost = await waitFor("alpha stopped on the host", async () => {
        const s = await statusOf(f, "alpha");
        return s.state === "stopped" ? s : null;
      }, 5000, 20);
      expect(onHost).toMatchObject({ desired: "stopped", cause: "host-stop" });

      const messages = (await f.t.db.event.findMany({ where: { modelId: { in: [alpha.id, beta.id] }, kind: "state" }, orderBy: { id: "asc" } })).map((e) => e.message);
      // The agent's own words may follow the cause (on a loaded machine: killed after the stop's grace).
      expect(messages.join("\n")).toMatch(/^beta: stopped \(stopped on request(: [^\n]+)?\)$/m);
      expect(messages.join("\n")).toMatch(/alpha: exited \(crashed: killed by SIGKILL/);
      expect(messages.join("\n")).toMatch(/alpha: stopped on its host, outside this app/);
    });

    it(older ? "an unload for idleness stops the model; the older agent is not sent the cause (it would refuse it)" : "an unload for idleness tells the agent why: its stopped status says idle", async () => {
      const { f, stops, model: idle } = await runningWithStopsRecorded(older, "idle");
      const stopped = await f.fleet.stop(idle.id, { cause: "idle" });
      expect(stopped.state).toBe("stopped");
      expect(await statusOf(f, "idle")).toMatchObject({ state: "stopped", cause: "idle" });
      expect(stops.map((c) => c.params)).toEqual([older ? { id: "idle" } : { id: "idle", cause: "idle" }]);
      if (!older) expect(stops[0]!.result).toMatchObject({ state: "stopped", cause: "idle" });
    });

    it(older ? "a stop at the app's shutdown: the older agent is not sent the cause; the app's events say shutdown" : "a stop at the app's shutdown tells the agent why: its stopped statuses say shutdown", async () => {
      const { f, stops, model: m } = await runningWithStopsRecorded(older, "alpha");
      const results = await f.fleet.shutdown({ stopServers: true, deadlineMs: 20_000 });
      expect(results.map((r) => [r.name, r.state])).toEqual([["alpha", "stopped"]]);
      const stopAll = stops.filter((c) => c.method === "stopAll");
      expect(stopAll.map((c) => c.params.cause ?? null)).toEqual([older ? null : "shutdown"]);
      expect(stopAll[0]!.result).toEqual([expect.objectContaining(older ? { state: "stopped", reason: "stopped on request" } : { state: "stopped", reason: "stopped at app shutdown", cause: "shutdown" })]);
      const ev = await f.t.db.event.findFirstOrThrow({ where: { modelId: m.id, kind: "state", state: "stopped" } });
      expect(ev.message).toBe("alpha: stopped (stopped at app shutdown)");
      expect(JSON.parse(ev.data!)).toMatchObject({ reason: "stopped at app shutdown", cause: "shutdown" });
    });

    it(older ? "a restart: the older agent is not sent the cause; the app's events say the stop was a restart's" : "a restart tells the agent why: its stopped status and the run's last log line say restart", async () => {
      const { f, stops, model: m } = await runningWithStopsRecorded(older, "alpha");
      const first = await statusOf(f, "alpha");
      const restarted = await f.fleet.restart(m.id);
      expect(restarted).toMatchObject({ state: "ready" });
      expect(restarted.pid).not.toBe(first.pid);
      expect(stops.map((c) => c.params)).toEqual([older ? { id: "alpha" } : { id: "alpha", cause: "restart" }]);
      expect(stops[0]!.result).toMatchObject(older ? { state: "stopped", reason: "stopped on request" } : { state: "stopped", reason: "stopped to restart", cause: "restart" });
      const ev = await f.t.db.event.findFirstOrThrow({ where: { modelId: m.id, kind: "state", state: "stopped" } });
      expect(ev.message).toBe("alpha: stopped (stopped to restart)");
      expect(JSON.parse(ev.data!)).toMatchObject({ cause: "restart" });
      // The first run's last line in the log: how a user reading the file on the host tells a restart from a stop.
      const log = (await readFile((stops[0]!.result as { logPath: string }).logPath, "utf8")).split("\n");
      const ended = log.filter((l) => /^=== synapse host-agent: ended alpha at /.test(l));
      expect(ended).toEqual([expect.stringMatching(older ? /: stopped, cause requested: stopped on request ===$/ : /: stopped, cause restart: stopped to restart ===$/)]);
    });
  });
}

describe("with an agent of the release before restart-cause (stand-in-agent-before-restart-cause)", () => {
  it("a restart sends no cause the agent would refuse: the restart goes through, and the app's events say it was a restart's stop", async () => {
    const stops: { method: string; params: Record<string, unknown>; result: unknown }[] = [];
    const f = (fx = await fleetFixture({ viewLinks: (pool) => spyOnStops(standInAgentsBefore(pool, "restart-cause"), stops) }));
    const m = await f.addModel("alpha");
    await f.fleet.startAll({ wait: true });
    await f.fleet.reconcile(f.host.id);
    const restarted = await f.fleet.restart(m.id);
    expect(restarted).toMatchObject({ state: "ready", error: null });
    expect(stops.map((c) => c.params)).toEqual([{ id: "alpha" }]);
    const ev = await f.t.db.event.findFirstOrThrow({ where: { modelId: m.id, kind: "state", state: "stopped" } });
    expect(ev.message).toBe("alpha: stopped (stopped to restart)");
    // The hosts page says what that agent lacks, and which host to update.
    expect(f.fleet.agent(f.host.id)).toMatchObject({ missing: ["restart-cause"], advice: expect.stringMatching(/^update the agent on local: .*restart-cause \(the agent's own log and status say a stop was requested where the app stopped a server to restart it/) });
  });
});

describe("a link that connects again to another agent (an ssh session starts the host's agent anew, updated or not)", () => {
  it("its hello is read again: after it came back to an agent of the release before restart-cause, a restart sends no cause that agent refuses", async () => {
    /** From now on the agent behind the link is of the release before restart-cause. */
    let older = false;
    const listeners: ((hostId: string, change: LinkStateChange) => void)[] = [];
    const stops: { method: string; params: Record<string, unknown>; result: unknown }[] = [];
    const f = (fx = await fleetFixture({
      viewLinks: (pool) => {
        const switched = viewLinks(pool, (link) =>
          new Proxy(link, {
            get(target, prop, receiver) {
              if (prop === "call") {
                return async (method: string, params: unknown, options?: unknown) => {
                  if (older && method === "stop" && (params as { cause?: unknown }).cause === "restart") throw new Error("invalid params for stop: cause: invalid enum value 'restart'");
                  const result = await (target.call as (m: string, p: unknown, o?: unknown) => Promise<unknown>)(method, params, options);
                  if (older && method === "hello") return { ...(result as object), features: ((result as { features: string[] }).features).filter((x) => x !== "restart-cause") };
                  return result;
                };
              }
              const v: unknown = Reflect.get(target, prop, receiver);
              return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
            },
          }),
        );
        return spyOnStops({ ...switched, onState: (l) => (listeners.push(l), switched.onState(l)) }, stops);
      },
    }));
    const m = await f.addModel("alpha");
    await f.fleet.startAll({ wait: true });
    await f.fleet.reconcile(f.host.id);
    expect(f.fleet.agent(f.host.id)?.features).toContain("restart-cause");
    // The session drops and comes back: the wrapper started the agent installed there now, an older one.
    older = true;
    for (const l of listeners) l(f.host.id, { host: "local", state: "connected", previous: "disconnected" });
    const restarted = await f.fleet.restart(m.id);
    expect(restarted).toMatchObject({ state: "ready", error: null });
    expect(stops.map((c) => c.params)).toEqual([{ id: "alpha" }]);
    expect(f.fleet.agent(f.host.id)).toMatchObject({ missing: ["restart-cause"] });
  });
});
