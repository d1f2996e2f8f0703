import os from "node:os";
import { describe, expect, it } from "vitest";
import type { HostMemoryView } from "~/server/services/fleet/host-memory";
import { fleetHostFigures } from "./host-figures";

const GiB = 1024 ** 3;

function view(over: Partial<HostMemoryView>): HostMemoryView {
  return { budgetBytes: null, source: null, basis: "", reading: null, error: null, advice: null, ...over };
}

const macReading = {
  platform: "darwin",
  totalBytes: 36 * GiB,
  availableBytes: 20 * GiB,
  gpuWorkingSetBytes: 27 * GiB,
  wiredLimitBytes: null,
  devices: [],
  budgetBytes: 27 * GiB,
  basis: "Metal working set of MTL0",
  problems: [],
  at: "2026-11-30T05:00:00Z",
};

describe("fleetHostFigures", () => {
  it("an ssh host's figures come from its agent's reading, with the budget its memory view gives; the local host from this machine", async () => {
    const views: Record<string, HostMemoryView> = {
      mac: view({ budgetBytes: 27 * GiB, source: "agent", reading: { ...macReading, load: { cpus: 12, load1: 2.5, load5: 1.5, load15: 1 } } }),
      here: view({ budgetBytes: 8 * GiB, source: "user" }),
    };
    const source = fleetHostFigures(async (id) => views[id]!);
    const figures = await source([
      { id: "mac", name: "mac-studio", linkKind: "ssh" },
      { id: "here", name: "local", linkKind: "local" },
    ]);
    expect(figures).toEqual([
      { host: "mac-studio", memoryTotalBytes: 36 * GiB, memoryAvailableBytes: 20 * GiB, memoryBudgetBytes: 27 * GiB, cpus: 12, load1: 2.5, load5: 1.5, load15: 1 },
      expect.objectContaining({ host: "local", memoryTotalBytes: os.totalmem(), memoryBudgetBytes: 8 * GiB, cpus: os.availableParallelism() }),
    ]);
  });

  it("an agent older than the load figures gives memory without load; a host with no reading (or whose view fails) is left out", async () => {
    const views: Record<string, HostMemoryView> = { old: view({ reading: macReading }), none: view({ advice: "update the agent on none" }) };
    const source = fleetHostFigures(async (id) => {
      if (id === "broken") throw new Error("link down");
      return views[id]!;
    });
    const figures = await source([
      { id: "old", name: "old-mac", linkKind: "ssh" },
      { id: "none", name: "none", linkKind: "ssh" },
      { id: "broken", name: "broken", linkKind: "ssh" },
    ]);
    expect(figures).toEqual([{ host: "old-mac", memoryTotalBytes: 36 * GiB, memoryAvailableBytes: 20 * GiB, memoryBudgetBytes: null, cpus: null, load1: null, load5: null, load15: null }]);
  });
});
