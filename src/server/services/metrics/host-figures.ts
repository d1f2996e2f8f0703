/**
 * Each host's memory and CPU load. Today: the app's own machine, for hosts
 * linked `local` (Node's os module). The hook for the others is
 * HostFiguresSource: when agents report their hosts' figures (the memory
 * budget of "Know before loading", issue 16), a source that asks them
 * replaces `localHostFigures` in createAppMetrics's options.
 */
import os from "node:os";

export interface HostFigures {
  host: string;
  memoryTotalBytes: number;
  memoryAvailableBytes: number;
  /** The memory the host lets its servers use (on a Mac the Metal working set limit); null until agents report it. */
  memoryBudgetBytes: number | null;
  cpus: number;
  /** 1, 5 and 15 minute load averages (0 on Windows). */
  load1: number;
  load5: number;
  load15: number;
}

/** The figures of the named hosts that it can read. */
export type HostFiguresSource = (hosts: readonly { name: string; linkKind: string }[]) => Promise<HostFigures[]>;

/** The app's machine, for every `local` host. */
export const localHostFigures: HostFiguresSource = async (hosts) => {
  const [l1, l5, l15] = os.loadavg();
  const total = os.totalmem();
  const available = os.freemem();
  return hosts
    .filter((h) => h.linkKind === "local")
    .map((h) => ({ host: h.name, memoryTotalBytes: total, memoryAvailableBytes: available, memoryBudgetBytes: null, cpus: os.availableParallelism(), load1: l1 ?? 0, load5: l5 ?? 0, load15: l15 ?? 0 }));
};
