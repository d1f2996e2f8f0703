/**
 * The words beside a host's memory bar (memory-bars.tsx): what its running servers hold by their estimates, of
 * its budget, what START ALL ENABLED would add, and what is left. While the host cannot be reached
 * (shared/host-reach.ts hostUnreachable), what runs is this app's last known state, and the words say so. Pure.
 */
import { hostUnreachable, type LinkView } from "~/shared/host-reach";

/** The fields of a memory bar (servers.memory) this reads. Bytes; `budgetBytes` null: not known. */
export interface MemoryFiguresBar {
  host: string;
  budgetBytes: number | null;
  usedBytes: number;
  startAllBytes: number;
  /** The host's link (as the status view's); absent from an older app's answer: read as reachable. */
  link?: LinkView | null;
}

/**
 * The figures line and the bar's accessible label. `size`: bytes as the bar prints them (memory-size.ts sizeText).
 * Reachable: "3.1 GiB estimated for running servers, of 12.0 GiB · start all adds 1.0 GiB · 8.9 GiB left".
 * Not reachable: "host mac cannot be reached: 3.1 GiB estimated for the servers running when last known, of 12.0 GiB · …
 * · 8.9 GiB left when last known" (what is left is by the last known states too).
 */
export function memoryFigures(bar: MemoryFiguresBar, size: (bytes: number) => string): { text: string; label: string } {
  const away = hostUnreachable(bar.link);
  const used = `${size(bar.usedBytes)} estimated for ${away ? "the servers running when last known" : "running servers"}`;
  const lead = away ? `host ${bar.host} cannot be reached: ` : "";
  const adds = bar.startAllBytes > 0 ? `start all adds ${size(bar.startAllBytes)}` : null;
  const text =
    bar.budgetBytes !== null
      ? `${lead}${used}, of ${size(bar.budgetBytes)}${adds ? ` · ${adds}` : ""} · ${size(Math.max(0, bar.budgetBytes - bar.usedBytes))} left${away ? " when last known" : ""}`
      : `${lead}${used} · budget unknown`;
  const label = `${bar.host}: ${lead}${used}${bar.budgetBytes !== null ? `, of ${size(bar.budgetBytes)}` : ""}${adds ? `, ${adds}` : ""}`;
  return { text, label };
}
