/**
 * Each host's figures as Prometheus metrics, labelled {host}:
 *
 *   synapse_host_memory_total_bytes, synapse_host_memory_available_bytes,
 *   synapse_host_memory_budget_bytes (when its agent reports one),
 *   synapse_host_cpus, synapse_host_load1 / load5 / load15
 */
import { Gauge, type Registry } from "prom-client";
import type { HostFigures } from "./host-figures";

export function registerHostFigures(registry: Registry, read: () => Promise<HostFigures[]>): void {
  const registers = [registry];
  // Read once per scrape, shared by every host gauge (the first gauge's collect reads it).
  let pending: Promise<HostFigures[]> | null = null;
  const figures = () => (pending ??= read().finally(() => setTimeout(() => (pending = null), 0)));
  const gauge = (name: string, help: string, value: (h: HostFigures) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames: ["host"] as const,
      registers,
      async collect() {
        this.reset();
        for (const h of await figures().catch(() => [] as HostFigures[])) {
          const v = value(h);
          if (v !== null) this.set({ host: h.host }, v);
        }
      },
    });
  gauge("synapse_host_memory_total_bytes", "The host's physical memory", (h) => h.memoryTotalBytes);
  gauge("synapse_host_memory_available_bytes", "Memory available for new work on the host", (h) => h.memoryAvailableBytes);
  gauge("synapse_host_memory_budget_bytes", "Memory the host lets its model servers use (its agent's budget)", (h) => h.memoryBudgetBytes);
  gauge("synapse_host_cpus", "CPUs of the host", (h) => h.cpus);
  gauge("synapse_host_load1", "The host's 1-minute load average", (h) => h.load1);
  gauge("synapse_host_load5", "The host's 5-minute load average", (h) => h.load5);
  gauge("synapse_host_load15", "The host's 15-minute load average", (h) => h.load15);
}
