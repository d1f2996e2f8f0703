/**
 * A host's memory budget as the hosts page shows it: read from its real agent (this Linux machine:
 * /proc/meminfo and the CPU llama-server's `--list-devices`), set by hand on the host, or unknown with an
 * agent older than "host-memory" (stand-in-older-agent), which the view says to update.
 */
import os from "node:os";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { fleetFixture, type FleetFixture } from "./testing/fixture";
import { standInOlderAgents } from "./testing/stand-in-older-agent";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

const memTotal = () => Number(/^MemTotal:\s+(\d+) kB/m.exec(readFileSync("/proc/meminfo", "utf8"))![1]) * 1024;

describe("host memory", () => {
  it("this checkout's agent reports MemTotal as the budget of a host without GPUs; a budget set by hand wins", async () => {
    const f = (fx = await fleetFixture());
    await f.fleet.reconcile(f.host.id);
    const view = await f.fleet.hostMemory(f.host.id, { refresh: true });
    expect(view).toMatchObject({ budgetBytes: memTotal(), source: "agent", error: null, advice: null });
    expect(view.basis).toMatch(/^MemTotal \(\d+\.\d GiB\); llama-server listed no GPU$/);
    expect(view.reading).toMatchObject({ platform: "linux", totalBytes: memTotal(), devices: [], problems: [] });
    expect(view.reading!.availableBytes).toBeGreaterThan(0);
    // And its CPUs and load, which /api/metrics gives for hosts the app does not run on.
    expect(view.reading!.load).toMatchObject({ cpus: os.availableParallelism() });
    expect(view.reading!.load!.load1).toBeGreaterThanOrEqual(0);

    await f.t.db.host.update({ where: { id: f.host.id }, data: { memoryBudgetMiB: 512 } });
    expect(await f.fleet.hostMemory(f.host.id)).toMatchObject({ budgetBytes: 512 * 1024 ** 2, source: "user", basis: "set by the user" });
    await expect(f.fleet.hostMemory("no-such-host")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("an agent older than host-memory: no budget, and the view says which host to update", async () => {
    const f = (fx = await fleetFixture({ viewLinks: standInOlderAgents }));
    await f.fleet.reconcile(f.host.id);
    const view = await f.fleet.hostMemory(f.host.id, { refresh: true });
    expect(view).toMatchObject({ budgetBytes: null, source: null, reading: null });
    expect(view.advice).toMatch(/^update the agent on local: .*cannot report its memory/);
    expect(f.fleet.agent(f.host.id)!.advice).toMatch(/host-memory \(the host's memory budget is unknown/);
  });
});
