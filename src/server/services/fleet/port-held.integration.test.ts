/**
 * A model whose port another program holds (8080, where discovery numbers from, is a popular port): the
 * start is refused before anything is spawned, and what the user reads says who holds the port and what
 * to change. Real SQLite file, the local link's real agent, a real listener in this process.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../../../host-agent/test/harness/ports";
import { modelOutcomeOk, modelReport } from "~/client/cli";
import { updateModel } from "~/server/services/registry/models";
import { PORT_HELD_ADVICE, RESTART_PORT_HELD_ADVICE } from "./start-outcome";
import { fleetFixture, portFree, statusOf, type FleetFixture } from "./testing/fixture";

let fx: FleetFixture | null = null;
let holder: net.Server | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await new Promise<void>((resolve) => (holder ? holder.close(() => resolve()) : resolve()));
  holder = null;
  await f?.dispose();
});

describe("a start whose port is held", () => {
  it("is refused naming the holder and saying what to change; once the port is free, the same model starts", async () => {
    const f = (fx = await fleetFixture());
    const m = await f.addModel("alpha");
    holder = net.createServer();
    await new Promise<void>((resolve) => holder!.listen(m.port, "127.0.0.1", resolve));

    const refused = await f.fleet.start(m.id, { wait: true });
    expect(refused.state).toBe("failed");
    expect(refused.error).toBe(`cannot start alpha: port ${m.port} is held by pid ${process.pid} (node); ${PORT_HELD_ADVICE}`);
    // The dashboard and the activity log read the same text.
    const row = await f.t.db.serverState.findUniqueOrThrow({ where: { modelId: m.id } });
    expect(row.lastError).toBe(refused.error);
    const ev = await f.t.db.event.findFirstOrThrow({ where: { modelId: m.id, kind: "error" }, orderBy: { id: "desc" } });
    expect(ev.message).toBe(refused.error);

    await new Promise<void>((resolve) => holder!.close(() => resolve()));
    holder = null;
    const started = await f.fleet.start(m.id, { wait: true });
    expect([started.state, started.error]).toEqual(["ready", null]);
  });
});

describe("a restart whose new port is held", () => {
  it("stops nothing: the running server keeps serving on its old port, and the answer names the holder; once the port is free, the restart moves it", async () => {
    const f = (fx = await fleetFixture());
    const m = await f.addModel("alpha");
    const oldPort = m.port;
    const started = await f.fleet.start(m.id, { wait: true });
    expect(started.state).toBe("ready");
    const newPort = await freePort();
    holder = net.createServer();
    await new Promise<void>((resolve) => holder!.listen(newPort, "127.0.0.1", resolve));
    await updateModel(f.t.db, { id: m.id, port: newPort }, { appPort: 3999, events: f.events });

    const refused = await f.fleet.restart(m.id, { wait: true });
    expect(refused).toMatchObject({ state: "ready", pid: started.pid, port: oldPort });
    expect(refused.error).toBe(`cannot start alpha: port ${newPort} is held by pid ${process.pid} (node); alpha keeps running on port ${oldPort} (nothing was stopped); ${RESTART_PORT_HELD_ADVICE}`);
    // What the CLI prints, and its exit status (modelOutcomeOk false: exit 1).
    expect(modelReport("restart", refused)).toContain(`not restarted: cannot start alpha: port ${newPort} is held`);
    expect(modelOutcomeOk("restart", refused)).toBe(false);
    // The same process still runs and answers on the old port.
    expect(await statusOf(f, "alpha")).toMatchObject({ state: "ready", pid: started.pid, port: oldPort, pendingPort: newPort });
    expect((await fetch(`http://127.0.0.1:${oldPort}/health`)).status).toBe(200);
    const ev = await f.t.db.event.findFirstOrThrow({ where: { modelId: m.id, kind: "error" }, orderBy: { id: "desc" } });
    expect(ev.message).toBe(`alpha: not restarted (${refused.error})`);

    await new Promise<void>((resolve) => holder!.close(() => resolve()));
    holder = null;
    const restarted = await f.fleet.restart(m.id, { wait: true });
    expect([restarted.state, restarted.error, restarted.port]).toEqual(["ready", null, newPort]);
    expect(restarted.pid).not.toBe(started.pid);
    expect(await portFree(oldPort)).toBe(true);
  });
});
