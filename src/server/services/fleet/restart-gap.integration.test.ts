/**
 * A crash's restart between its turn and the agent's `starting` (real
 * llama-server, a real SQLite file): the restart's start is held at the link
 * for as long as the test needs, so the gap that lasts tens of ms in the app
 * is open while the test looks.
 *
 * Found by reading the code: the restart's start cleared the model's planned
 * restart (nextRestartAt) before it called the agent, so until `starting` was
 * recorded every reader saw "crashed, no restart planned", and an app that
 * died in between (a crash, kill -9, a container restart) left the model
 * exited for good: the next app's reconcile loop restarts an exited model
 * only when a restart is planned.
 */
import type { ServerSpec } from "synapse-host-agent/protocol";
import { afterEach, describe, expect, it } from "vitest";
import { createHostAgent } from "../../../../host-agent/src/agent";
import { agentOptions } from "../../../../host-agent/test/harness/fixtures";
import { restartText } from "~/shared/restart-text";
import { fleetFixture, pidsRunning, statusOf, waitFor, type FleetFixture } from "./testing/fixture";
import { viewLinks } from "./testing/stand-in-older-agent";
import { callGate, type HeldCall } from "./testing/call-gate";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});


/** A fleet whose model `alpha` runs (ready), with its restart's start held once it crashes; returns its first pid. */
type Gate = ReturnType<typeof callGate>["gate"];

/** A fleet over the gated links, with a model `alpha` started (ready); `baseDelayMs`: the restart backoff. */
async function runningAlpha(baseDelayMs: number): Promise<{ f: FleetFixture; gate: Gate; modelId: string; pid: number }> {
  const { gate, view } = callGate();
  fx = await fleetFixture({ fleet: { restartPolicy: { baseDelayMs, maxDelayMs: baseDelayMs } }, viewLinks: (pool) => viewLinks(pool, view) });
  const m = await fx.addModel("alpha");
  const [first] = await fx.fleet.startAll({ wait: true });
  expect(first!.state, first!.error ?? "").toBe("ready");
  return { f: fx, gate, modelId: m.id, pid: first!.pid! };
}

/** The spec a held start call carries. */
function specOf(held: HeldCall): ServerSpec {
  return (held.params as { spec: ServerSpec }).spec;
}

async function crashedWithRestartHeld(): Promise<{ f: FleetFixture; gate: Gate; modelId: string; pid: number; killedAt: number }> {
  const { f, gate, modelId, pid } = await runningAlpha(50);
  gate.holding.add("start");
  const killedAt = Date.now();
  process.kill(pid, "SIGKILL");
  // The restart's turn came (50 ms backoff): its start was issued, and is held before the agent.
  await waitFor("the restart's start to be issued", async () => gate.held.length === 1, 10_000, 10);
  expect([gate.held[0]!.method, specOf(gate.held[0]!).id]).toEqual(["start", "alpha"]);
  return { f, gate, modelId, pid, killedAt };
}

describe("a crash's restart between its turn and the agent's starting (real llama-server)", () => {
  it("the status read while the restart's start is on its way shows the restart under way (due, not 'nothing planned'); once it runs, none is pending", async () => {
    const { f, gate, modelId, pid, killedAt } = await crashedWithRestartHeld();

    const during = await statusOf(f, "alpha");
    expect(during).toMatchObject({ state: "exited", desired: "running", pid: null, restarts: 1 });
    expect(during.nextRestartAt, "the planned restart, kept while its start is on its way").not.toBeNull();
    const due = Date.parse(during.nextRestartAt!);
    expect(due).toBeGreaterThanOrEqual(killedAt);
    expect(due).toBeLessThanOrEqual(Date.now());
    // What the dashboard's row and the CLI's STATE column say of it.
    expect(restartText(during, Date.now())).toBe("restart due");

    gate.held[0]!.release();
    const again = await waitFor("restarted and ready", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "ready" && s.pid !== pid ? s : null;
    }, 20_000);
    expect(again).toMatchObject({ restarts: 1, nextRestartAt: null, lastError: null });
    expect(await pidsRunning((await f.t.db.model.findUniqueOrThrow({ where: { id: modelId } })).filePath)).toEqual([again.pid]);
  });

  it("the app dies after the restart's turn, before its start reached the agent: the next app restarts the model, once", async () => {
    const { f, gate, modelId, pid } = await crashedWithRestartHeld();
    const lastEventBefore = (await f.t.db.event.findFirst({ orderBy: { id: "desc" } }))!.id;

    // The app goes away (its servers left running, as a crash of it leaves them); the start it had issued is lost.
    await f.restart({
      stopServers: false,
      whileDown: async () => {
        gate.holding.clear();
        gate.held[0]!.lose();
      },
    });
    // The database as the first app left it: still a crash awaiting its restart.
    const left = await f.t.db.serverState.findUniqueOrThrow({ where: { modelId } });
    expect([left.observed, left.desired, left.nextRestartAt === null]).toEqual(["exited", "running", false]);

    // The next app's first contact with the host (its reconcile loop).
    await f.fleet.adopt({ timeoutMs: 5000 });
    const again = await waitFor("restarted by the next app and ready", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "ready" && s.pid !== pid ? s : null;
    }, 20_000);
    expect(again.nextRestartAt).toBeNull();
    const file = (await f.t.db.model.findUniqueOrThrow({ where: { id: modelId } })).filePath;
    expect(await pidsRunning(file)).toEqual([again.pid]);

    // Once: one process started since, and another reconcile pass (the tick) leaves it as it is.
    await f.fleet.reconcile(f.host.id);
    const starts = await f.t.db.event.findMany({ where: { id: { gt: lastEventBefore }, modelId, kind: "state", state: "starting" } });
    expect(starts).toHaveLength(1);
    expect(await pidsRunning(file)).toEqual([again.pid]);
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "ready", pid: again.pid });
  });

  it("the app dies after its restart's start reached the agent, before the answer was recorded: the next app adopts the restarted server, not restarting it again", async () => {
    const { f, gate, modelId, pid } = await crashedWithRestartHeld();
    const held = gate.held[0]!;
    let spawned: number | null = null;
    await f.restart({
      stopServers: false,
      whileDown: async () => {
        gate.holding.clear();
        held.lose();
        // The agent on the host got the start and spawned the server (here: the host's own agent on the same
        // state folder, as the next app's agent finds it); the app that sent it never heard back.
        const hostAgent = createHostAgent(agentOptions(f.dirs, f.bin));
        try {
          await hostAgent.ready;
          const s = await hostAgent.call("start", { spec: specOf(held) });
          expect(s.state).toBe("ready");
          spawned = s.pid;
        } finally {
          hostAgent.close();
        }
      },
    });
    expect(spawned).not.toBe(pid);

    const report = await f.fleet.adopt({ timeoutMs: 5000 });
    expect(report[0]!.adopted.map((a) => [a.name, a.pid])).toEqual([["alpha", spawned]]);
    await f.fleet.reconcile(f.host.id);
    // Past any backoff: the restart was not made again.
    await new Promise((r) => setTimeout(r, 400));
    const file = (await f.t.db.model.findUniqueOrThrow({ where: { id: modelId } })).filePath;
    expect(await pidsRunning(file)).toEqual([spawned]);
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "ready", pid: spawned, nextRestartAt: null, restarts: 1 });
  });

  it("the restart's turn comes while a reconcile pass holds the host's queue, and the pass finds it planned and not under way: it is made once", async () => {
    const { f, gate, modelId, pid } = await runningAlpha(300);
    const lastEventBefore = (await f.t.db.event.findFirst({ orderBy: { id: "desc" } }))!.id;
    gate.holding.add("status");
    process.kill(pid, "SIGKILL");
    const crashed = await waitFor("the crash recorded with its restart planned", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "exited" && s.nextRestartAt !== null ? s : null;
    }, 10_000, 10);
    // A reconcile pass takes the host's queue and waits for the agent's status ...
    const pass = f.fleet.reconcile(f.host.id);
    await waitFor("the pass to ask the agent's status", async () => gate.held.some((h) => h.method === "status"), 10_000, 10);
    // ... while the restart's turn comes: its start waits behind the pass, which then finds the restart planned
    // (recorded), its timer gone and no start in flight, and schedules it again.
    const due = Date.parse(crashed.nextRestartAt!);
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now()) + 150));
    expect(await f.t.db.event.count({ where: { id: { gt: lastEventBefore }, modelId, message: { contains: "restarting after a crash" } } })).toBe(0);
    gate.holding.clear();
    for (const h of gate.held) h.release();
    await pass;

    const again = await waitFor("restarted and ready", async () => {
      const s = await statusOf(f, "alpha");
      return s.state === "ready" && s.pid !== pid ? s : null;
    }, 20_000);
    // Well past both turns (the timer's, and the one the pass scheduled).
    await new Promise((r) => setTimeout(r, 500));
    const file = (await f.t.db.model.findUniqueOrThrow({ where: { id: modelId } })).filePath;
    expect(await pidsRunning(file)).toEqual([again.pid]);
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "ready", pid: again.pid, restarts: 1, nextRestartAt: null });
    const since = await f.t.db.event.findMany({ where: { id: { gt: lastEventBefore }, modelId }, orderBy: { id: "asc" } });
    expect(since.filter((e) => e.message.includes("restarting after a crash"))).toHaveLength(1);
    expect(since.filter((e) => e.kind === "state" && e.state === "starting")).toHaveLength(1);
  });

  it("stopped while the restart's start is on its way: the stop wins; the restart is not resumed, neither by this app nor by the next", async () => {
    const { f, gate, modelId } = await crashedWithRestartHeld();
    const stopped = await f.fleet.stop(modelId);
    expect(stopped.state).toBe("stopped");
    gate.held[0]!.lose();
    gate.holding.clear();
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "stopped", desired: "stopped", nextRestartAt: null });

    await f.fleet.reconcile(f.host.id);
    // Well past the backoff (50 ms).
    await new Promise((r) => setTimeout(r, 400));
    const file = (await f.t.db.model.findUniqueOrThrow({ where: { id: modelId } })).filePath;
    expect(await pidsRunning(file)).toEqual([]);

    await f.restart({ stopServers: false });
    await f.fleet.adopt({ timeoutMs: 5000 });
    await new Promise((r) => setTimeout(r, 400));
    expect(await pidsRunning(file)).toEqual([]);
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "stopped", desired: "stopped", nextRestartAt: null });
  });
});
