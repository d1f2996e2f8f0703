/**
 * A model whose port another program holds (8080, where discovery numbers from, is a popular port): the
 * start is refused before anything is spawned, and what the user reads says who holds the port and what
 * to change. Real SQLite file, the local link's real agent, a real listener in this process.
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { PORT_HELD_ADVICE } from "./start-outcome";
import { fleetFixture, type FleetFixture } from "./testing/fixture";

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
