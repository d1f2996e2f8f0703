/**
 * Each host's memory and CPU load: for hosts linked `local`, the app's own
 * machine (Node's os module); for the others, the last reading of their
 * agent's `hostMemory` (agents with "host-memory"; the load from agents that
 * send it), which the fleet's reconcile loop keeps fresh (every 15 s). Every
 * host gets its memory budget from the fleet (the user's or its agent's).
 */
import os from "node:os";
import type { HostMemoryView } from "~/server/services/fleet/host-memory";

export interface HostFigures {
  host: string;
  memoryTotalBytes: number;
  /** null: its agent could not read it. */
  memoryAvailableBytes: number | null;
  /** The memory the host lets its servers use (on a Mac the Metal working set limit); null until agents report it. */
  memoryBudgetBytes: number | null;
  /** null: the host's agent does not report it (older than the load figures). */
  cpus: number | null;
  /** 1, 5 and 15 minute load averages (0 on Windows); null as cpus. */
  load1: number | null;
  load5: number | null;
  load15: number | null;
}

/** The figures of the named hosts that it can read. */
export type HostFiguresSource = (hosts: readonly { id: string; name: string; linkKind: string }[]) => Promise<HostFigures[]>;

/** The app's machine, for every `local` host. */
export const localHostFigures: HostFiguresSource = async (hosts) => {
  const [l1, l5, l15] = os.loadavg();
  const total = os.totalmem();
  const available = os.freemem();
  return hosts
    .filter((h) => h.linkKind === "local")
    .map((h) => ({ host: h.name, memoryTotalBytes: total, memoryAvailableBytes: available, memoryBudgetBytes: null, cpus: os.availableParallelism(), load1: l1 ?? 0, load5: l5 ?? 0, load15: l15 ?? 0 }));
};

/**
 * Every host: `local` ones from this machine, the others from their agent's last `hostMemory` reading
 * (a host whose agent has none yet, or is older than "host-memory", is left out); each with the budget
 * its memory view gives. `view(hostId)` is the fleet's `hostMemory` (no new read of the agent).
 */
export function fleetHostFigures(view: (hostId: string) => Promise<HostMemoryView>): HostFiguresSource {
  return async (hosts) => {
    const local = await localHostFigures(hosts);
    const out: HostFigures[] = [];
    for (const h of hosts) {
      const v = await view(h.id).catch(() => null);
      const budget = v?.budgetBytes ?? null;
      const own = local.find((l) => l.host === h.name);
      if (own) {
        out.push({ ...own, memoryBudgetBytes: budget });
        continue;
      }
      const r = v?.reading;
      if (!r) continue;
      out.push({
        host: h.name,
        memoryTotalBytes: r.totalBytes,
        memoryAvailableBytes: r.availableBytes,
        memoryBudgetBytes: budget,
        cpus: r.load?.cpus ?? null,
        load1: r.load?.load1 ?? null,
        load5: r.load?.load5 ?? null,
        load15: r.load?.load15 ?? null,
      });
    }
    return out;
  };
}
