/**
 * A stop says what it found and what it did, as a user reads it: a model waiting to restart after a crash
 * (its restart is cancelled, and the answer says so rather than "not running"); a failed model (recorded
 * stopped with the stop's cause, its last error kept as history, one event saying so, no "stop requested"
 * that never completes); and the app's shutdown, which names only the servers it stopped and says of a
 * crashed or failed model what it found, as a user's stop does.
 *
 * Over the local link with the local agent: the crash-loop stand-in (stand-in-crashes-when-ready.mjs) and
 * the real llama-server. A stop that left the port held (stand-in-escapes) is told by the agent's report
 * (`stopIncomplete`), or by its words from an agent older than that field (stand-in-older-agent).
 */
import { chmod } from "node:fs/promises";
import net from "node:net";
import { isLiveProcess } from "../../../../host-agent/test/harness/fixtures.ts";
import { standIns } from "../../../../host-agent/test/harness/stand-ins/index.ts";
import { afterEach, describe, expect, it } from "vitest";
import type { LinkPool } from "./links";
import { fleetFixture, statusOf, pidsRunning, STAND_IN_CRASHES_WHEN_READY, waitFor, type FleetFixture, type FleetFixtureOptions } from "./testing/fixture";
import { standInOlderAgents, viewStatuses } from "./testing/stand-in-older-agent";

let fx: FleetFixture | null = null;
const holders: net.Server[] = [];
afterEach(async () => {
  const f = fx;
  fx = null;
  for (const h of holders.splice(0)) await new Promise<void>((resolve) => h.close(() => resolve()));
  await f?.dispose();
});

/** Holds `port` on 127.0.0.1 with a listener of this process (another process's, as the agent sees it) until the test ends. */
async function holdPort(port: number): Promise<void> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  holders.push(server);
}

async function setup(options: FleetFixtureOptions = {}): Promise<FleetFixture> {
  fx = await fleetFixture(options);
  return fx;
}

/** The model's events after event `afterId`, oldest first, as "kind state: message". */
async function eventsAfter(f: FleetFixture, modelId: string, afterId: number): Promise<string[]> {
  const rows = await f.t.db.event.findMany({ where: { modelId, id: { gt: afterId } }, orderBy: { id: "asc" } });
  return rows.map((e) => `${e.kind} ${e.state ?? "-"}: ${e.message}`);
}

async function lastEventId(f: FleetFixture): Promise<number> {
  return (await f.t.db.event.findFirst({ orderBy: { id: "desc" } }))?.id ?? 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("stop of a model that crashed and waits for its restart", () => {
  it("cancels the restart and says so: not 'not running', the restart's due time, stopped on request, never restarted", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 2500, maxDelayMs: 2500 } } });
    const crashy = await f.t.db.host.create({ data: { name: "crashy", linkKind: "local", llamaServerBin: STAND_IN_CRASHES_WHEN_READY } });
    const m = await f.addModel("bench", { hostId: crashy.id });
    expect((await f.fleet.start(m.id, { wait: true })).state).toBe("ready");
    const waiting = await waitFor("crashed and waiting for its restart", async () => {
      const s = await statusOf(f, "bench");
      return s.state === "exited" && s.nextRestartAt ? s : null;
    });
    const since = await lastEventId(f);
    const dueMs = Date.parse(waiting.nextRestartAt!);

    const result = await f.fleet.stop(m.id);
    expect(result.state).toBe("stopped");
    expect(result.notRunning).toBeUndefined();
    expect(result.restartCancelled?.dueAt).toBe(new Date(dueMs).toISOString());
    expect(result.restartCancelled!.dueInMs).toBeGreaterThan(0);
    expect(result.restartCancelled!.dueInMs).toBeLessThanOrEqual(2500);

    // Past the time the restart was due: it never came.
    await sleep(Math.max(0, dueMs - Date.now()) + 800);
    expect(await statusOf(f, "bench")).toMatchObject({ state: "stopped", cause: "requested", desired: "stopped", nextRestartAt: null });
    expect(await pidsRunning(m.filePath)).toEqual([]);
    // One event, saying what the stop found and did; no "stop requested" of a process, none that nothing completes.
    const events = await eventsAfter(f, m.id, since);
    expect(events).toEqual([expect.stringMatching(/^state stopped: bench: stopped \(stopped on request; it had crashed; its restart \(due in \d\.\d s\) is cancelled\)$/)]);
  });
});

describe("stop of a failed model (nothing runs)", () => {
  it("a start that never spawned (its file missing): stopped with the user's stop as its cause, last error kept as history, one event saying so", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    await f.t.db.model.update({ where: { id: m.id }, data: { filePath: `${f.dirs.modelRoot}/missing.gguf` } });
    const refused = await f.fleet.start(m.id, { wait: true });
    expect(refused.state).toBe("failed");
    const since = await lastEventId(f);

    const result = await f.fleet.stop(m.id);
    expect(result).toMatchObject({ state: "stopped", notRunning: true, previousState: "failed", error: null });
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "stopped", cause: "requested", desired: "stopped", lastError: refused.error });
    expect(await eventsAfter(f, m.id, since)).toEqual(["state stopped: alpha: stopped (stopped on request; it had failed, nothing was running)"]);
    // A reconcile pass (the agent's report of the process before) changes none of it.
    await f.fleet.reconcile(f.host.id);
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "stopped", cause: "requested" });
    expect(await eventsAfter(f, m.id, since)).toHaveLength(1);
  });

  it("a crash loop given up (failed, cause crash): the same, by stop and by stop-all", async () => {
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 50, maxDelayMs: 100, maxCrashes: 2 } } });
    const crashy = await f.t.db.host.create({ data: { name: "crashy", linkKind: "local", llamaServerBin: STAND_IN_CRASHES_WHEN_READY } });
    const one = await f.addModel("one", { hostId: crashy.id });
    const two = await f.addModel("two", { hostId: crashy.id });
    await f.fleet.startAll({ wait: true });
    for (const name of ["one", "two"]) await waitFor(`${name} failed after its crashes`, async () => (await statusOf(f, name)).state === "failed", 30_000);
    const lastErrors = { one: (await statusOf(f, "one")).lastError, two: (await statusOf(f, "two")).lastError };
    expect(lastErrors.one).toMatch(/crashed 2 times/);
    const since = await lastEventId(f);

    const stopped = await f.fleet.stop(one.id);
    expect(stopped).toMatchObject({ state: "stopped", notRunning: true, previousState: "failed", error: null });
    const all = await f.fleet.stopAll();
    expect(all.map((r) => [r.name, r.state, r.previousState])).toEqual([["two", "stopped", "failed"]]);
    for (const [m, name] of [[one, "one"], [two, "two"]] as const) {
      expect(await statusOf(f, name)).toMatchObject({ state: "stopped", cause: "requested", desired: "stopped", lastError: lastErrors[name] });
      expect(await eventsAfter(f, m.id, since)).toEqual([`state stopped: ${name}: stopped (stopped on request; it had failed, nothing was running)`]);
    }
    await f.fleet.reconcile(crashy.id);
    expect((await statusOf(f, "one")).state).toBe("stopped");
    expect(await eventsAfter(f, one.id, since)).toHaveLength(1);
  });
});

/**
 * An agent whose words for a stop that left the port held are not the usual ones: this checkout's agent, with
 * each such status's reason reworded ("the stop left port P held by pid N (name)") and its `stopIncomplete`
 * kept. An app that read the words would take the failure for an ended model's.
 */
function rewordedAgents(pool: LinkPool): LinkPool {
  return viewStatuses(pool, (s) => {
    const h = s.stopIncomplete;
    return h ? { ...s, reason: `the stop left port ${h.port} held by pid ${h.holderPid} (${h.holderCommand})` } : s;
  });
}

const PORT_HELD_AGENTS = [
  { agent: "this checkout's agent (stopIncomplete, and its usual words)", view: undefined, words: /^stop incomplete: port \d+ still held by pid (\d+)/ },
  { agent: "an agent with other words (stopIncomplete only: the app must not go by the words)", view: rewordedAgents, words: /^the stop left port \d+ held by pid (\d+)/ },
  { agent: "an agent older than stop-incomplete (stand-in-older-agent: the words only)", view: standInOlderAgents, words: /^stop incomplete: port \d+ still held by pid (\d+)/ },
] as const;

describe("stop of a model whose last stop could not free its port", () => {
  for (const { agent, view, words } of PORT_HELD_AGENTS) {
    it(`a daemon that escaped holds the port (stop incomplete), with ${agent}: a second stop is the agent's to make, not recorded done while the holder lives; once it is gone, the stop completes`, async () => {
      const f = await setup(view ? { viewLinks: view } : {});
      await chmod(standIns.escapes, 0o755);
      const escapey = await f.t.db.host.create({ data: { name: "escapey", linkKind: "local", llamaServerBin: standIns.escapes } });
      const m = await f.addModel("escapee", { hostId: escapey.id });
      expect((await f.fleet.start(m.id, { wait: true })).state).toBe("ready");
      const first = await f.fleet.stop(m.id);
      expect(first.state).toBe("failed");
      expect(first.error ?? "").toMatch(words);
      const daemon = Number(words.exec(first.error ?? "")![1]);
      const since = await lastEventId(f);
      try {
        // The holder lives: the stop is asked of the agent, which still finds the port held.
        const again = await f.fleet.stop(m.id);
        expect(again).toMatchObject({ state: "failed" });
        expect(again.previousState).toBeUndefined();
        expect(again.error ?? "").toMatch(words);
        // Not recorded stopped: the holder lives. The agent's retry (stopping, then failed again) settles on failed.
        const settled = await waitFor("the retried stop to settle on failed", async () => {
          const st = await statusOf(f, "escapee");
          return st.state === "failed" ? st : null;
        }, 10_000);
        expect(settled.lastError).toMatch(words);
        // Never recorded stopped meanwhile ("it had failed, nothing was running"): the retry's own states only.
        expect((await eventsAfter(f, m.id, since)).filter((e) => e.startsWith("state "))).toEqual([
          "state stopping: escapee: stopping (stop requested)",
          expect.stringMatching(/^state failed: escapee: failed \(/),
        ]);
      } finally {
        process.kill(daemon, "SIGKILL");
      }
      await waitFor("the daemon gone", async () => (isLiveProcess(daemon) ? null : true));
      expect(await f.fleet.stop(m.id)).toMatchObject({ state: "stopped" });
      expect((await statusOf(f, "escapee")).state).toBe("stopped");
    });
  }
});

describe("stop of a model already stopped", () => {
  it("answers notRunning, and its one event says nothing was there to stop", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    await f.fleet.start(m.id, { wait: true });
    await f.fleet.stop(m.id);
    const since = await lastEventId(f);
    const again = await f.fleet.stop(m.id);
    expect(again).toMatchObject({ state: "stopped", notRunning: true, error: null });
    expect(again.previousState).toBeUndefined();
    expect(again.restartCancelled).toBeUndefined();
    // An action event is appended without the stop waiting for it.
    await waitFor("the stop's event", async () => (await eventsAfter(f, m.id, since)).length > 0, 5000);
    expect(await eventsAfter(f, m.id, since)).toEqual(["action -: alpha: stop requested; it was not running: nothing to stop"]);
  });
});

describe("shutdown", () => {
  it("returns only the servers it stopped: one ready, one already stopped, one failed: one", async () => {
    const f = await setup();
    const running = await f.addModel("running");
    const stopped = await f.addModel("stopped-before");
    const failed = await f.addModel("failed-before");
    await f.fleet.startAll({ wait: true });
    await f.fleet.stop(stopped.id);
    await f.t.db.model.update({ where: { id: failed.id }, data: { filePath: `${f.dirs.modelRoot}/missing.gguf` } });
    await f.fleet.restart(failed.id, { wait: true });
    expect((await statusOf(f, "failed-before")).state).toBe("failed");
    await f.fleet.reconcile(f.host.id);

    const results = await f.fleet.shutdown({ stopServers: true, deadlineMs: 20_000 });
    expect(results.map((r) => [r.name, r.state])).toEqual([["running", "stopped"]]);
    expect(await pidsRunning(running.filePath)).toEqual([]);
  });

  it("one running, one crashed waiting for its restart, one failed (port held): names the one it stopped; the others' one event each says what it found; after the next start all stopped, the failure's error kept", async () => {
    // The restart is due well after the shutdown (a real llama-server killed with SIGKILL, as a user would).
    const f = await setup({ fleet: { restartPolicy: { baseDelayMs: 15_000, maxDelayMs: 15_000 } } });
    const lazy = await f.addModel("tiny-lazy");
    const crashed = await f.addModel("synapse-tiny");
    const failed = await f.addModel("tiny-embed");
    await holdPort(failed.port);
    const refused = await f.fleet.start(failed.id, { wait: true });
    expect([refused.state, refused.error]).toEqual(["failed", expect.stringMatching(/^cannot start tiny-embed: port \d+ is held by pid/)]);
    expect((await f.fleet.start(lazy.id, { wait: true })).state).toBe("ready");
    const victim = await f.fleet.start(crashed.id, { wait: true });
    expect(victim.state).toBe("ready");
    await f.fleet.reconcile(f.host.id); // the agent's hello (its features) is read, as the app's tick does
    process.kill(victim.pid!, "SIGKILL");
    const waiting = await waitFor("synapse-tiny crashed and waiting for its restart", async () => {
      const s = await statusOf(f, "synapse-tiny");
      return s.state === "exited" && s.nextRestartAt ? s : null;
    });
    const crashError = waiting.lastError;
    expect(crashError).toMatch(/SIGKILL/);
    const since = await lastEventId(f);

    const results = await f.fleet.shutdown({ stopServers: true, deadlineMs: 20_000 });
    // Only the process it ended: not the crashed one (nothing of it ran), not the failed one (it never ran).
    expect(results.map((r) => [r.name, r.state])).toEqual([["tiny-lazy", "stopped"]]);
    expect(await pidsRunning(lazy.filePath)).toEqual([]);

    // The next start of the app, on the same database: first contact with the host's agent, then a pass.
    await f.restart();
    await f.fleet.adopt();
    await f.fleet.reconcile(f.host.id);
    // What each shows: stopped at shutdown, not wanted; the crashed one's restart gone, the failed one's refusal
    // and the crash kept as their last errors (history), not replaced by anything this shutdown did.
    const view = async (name: string) => {
      const s = await statusOf(f, name);
      return { name, state: s.state, cause: s.cause, desired: s.desired, nextRestartAt: s.nextRestartAt, lastError: s.lastError };
    };
    expect([await view("tiny-embed"), await view("synapse-tiny"), await view("tiny-lazy")]).toEqual([
      { name: "tiny-embed", state: "stopped", cause: "shutdown", desired: "stopped", nextRestartAt: null, lastError: refused.error },
      { name: "synapse-tiny", state: "stopped", cause: "shutdown", desired: "stopped", nextRestartAt: null, lastError: crashError },
      { name: "tiny-lazy", state: "stopped", cause: "shutdown", desired: "stopped", nextRestartAt: null, lastError: null },
    ]);

    // The events since, per model (read after the app's event bus closed, so every append is in): the running
    // one's stop; one event for the crashed one saying its restart is cancelled, with no pid or signal of the
    // old crash as this stop's; one for the failed one saying nothing was running.
    const recorded = async (m: { id: string }) => {
      const rows = await f.t.db.event.findMany({ where: { modelId: m.id, id: { gt: since } }, orderBy: { id: "asc" } });
      return rows.map((e) => ({ what: `${e.kind} ${e.state ?? "-"}: ${e.message}`, pid: (JSON.parse(e.data ?? "{}") as { pid?: unknown }).pid ?? null }));
    };
    expect({ running: await recorded(lazy), crashed: await recorded(crashed), failed: await recorded(failed) }).toEqual({
      running: [
        { what: "state stopping: tiny-lazy: stopping (stopped at app shutdown)", pid: expect.any(Number) },
        { what: "state stopped: tiny-lazy: stopped (stopped at app shutdown)", pid: expect.any(Number) },
      ],
      crashed: [{ what: expect.stringMatching(/^state stopped: synapse-tiny: stopped \(stopped at app shutdown; it had crashed; its restart \(due in \d+\.\d s\) is cancelled\)$/), pid: null }],
      failed: [{ what: "state stopped: tiny-embed: stopped (stopped at app shutdown; it had failed, nothing was running)", pid: null }],
    });
  });

  it("a model wanted running that had not started (as after a start whose host link was down): none stopped; its one event says it is no longer wanted, not that it stopped", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    await f.t.db.serverState.create({ data: { modelId: m.id, desired: "running", desiredAt: new Date(), observed: "stopped", lastError: "host local: link down" } });
    // The host's link up, with no reconcile pass (it would start the model): the fixture's fleet has no tick.
    await f.links.get(f.host);
    const since = await lastEventId(f);

    expect(await f.fleet.shutdown({ stopServers: true, deadlineMs: 20_000 })).toEqual([]);
    await f.restart();
    expect(await eventsAfter(f, m.id, since)).toEqual(["action -: alpha: no longer wanted running: the app shut down while it was not running (the next start of the app leaves it stopped)"]);
  });

  it("with nothing running: none", async () => {
    const f = await setup();
    const m = await f.addModel("alpha");
    await f.fleet.start(m.id, { wait: true });
    await f.fleet.stop(m.id);
    expect(await f.fleet.shutdown({ stopServers: true, deadlineMs: 20_000 })).toEqual([]);
  });
});
