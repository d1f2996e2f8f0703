/**
 * Each host's memory budget: the user's own (Host.memoryBudgetMiB) or what its agent reads
 * (`hostMemory`, agents with "host-memory"), kept here with the time it was read. The reconcile loop
 * refreshes it; a plan asks for it and reads the agent only when nothing recent is known. With an agent
 * older than "host-memory" and no budget set by hand, the host has no budget: its starts are not checked,
 * and the view says which host to update.
 */
import type { HostLink } from "synapse-host-agent/link";
import type { HostMemory } from "synapse-host-agent/protocol";
import { errorMessage } from "synapse-host-agent/error-text";
import type { Host } from "~/generated/prisma/client";

const MiB = 1024 * 1024;
/** A reading older than this is read again by the reconcile loop (free memory moves; budgets rarely). */
export const HOST_MEMORY_MAX_AGE_MS = 15_000;
/** A `hostMemory` call's deadline: `llama-server --list-devices` initialises the GPU backends. */
const READ_DEADLINE_MS = 30_000;

/** The budget a plan charges against, or why there is none. Bytes. */
export type HostBudget =
  | { budgetBytes: number; source: "user" | "agent"; basis: string }
  | { budgetBytes: null; why: string };

/** What the hosts page shows about a host's memory. */
export interface HostMemoryView {
  /** What plans charge against; null: starts are not checked (`why`). */
  budgetBytes: number | null;
  source: "user" | "agent" | null;
  /** How the budget was chosen ("set by the user", "Metal working set of MTL0 …"), or why there is none. */
  basis: string;
  /** The agent's last reading (its totals, free memory, devices); null before one. */
  reading: HostMemory | null;
  /** The last read failed (a deadline, the link down): why. */
  error: string | null;
  /** "update the agent on HOST …" when its agent cannot report its memory. */
  advice: string | null;
}

export interface HostMemoryStore {
  /** Reads the agent again when its reading is older than HOST_MEMORY_MAX_AGE_MS (or `force`). Never rejects. */
  refresh(host: Host, link: HostLink, options?: { force?: boolean }): Promise<void>;
  /** The budget now: the user's, else the agent's (read now when none is known yet). */
  budget(host: Host, link: HostLink | null): Promise<HostBudget>;
  view(host: Host): HostMemoryView;
}

interface Known {
  reading: HostMemory | null;
  readAt: number;
  error: string | null;
  /** The agent lacks "host-memory". */
  older: boolean;
}

/**
 * `hasFeature(hostId)`: whether the host's agent said "host-memory" in its hello; null before the hello
 * was read (then the call is tried, and an agent that does not know the method counts as older).
 */
export function createHostMemoryStore(deps: { now: () => number; hasFeature: (hostId: string) => boolean | null }): HostMemoryStore {
  const known = new Map<string, Known>();
  const reading = new Map<string, Promise<void>>();

  function read(host: Host, link: HostLink): Promise<void> {
    let p = reading.get(host.id);
    if (p) return p;
    p = (async () => {
      const at = deps.now();
      if (deps.hasFeature(host.id) === false) {
        known.set(host.id, { reading: null, readAt: at, error: null, older: true });
        return;
      }
      try {
        const r = await link.call("hostMemory", {}, { timeoutMs: READ_DEADLINE_MS });
        known.set(host.id, { reading: r, readAt: at, error: null, older: false });
      } catch (err) {
        const text = errorMessage(err);
        const older = /unknown method/.test(text);
        const prev = known.get(host.id);
        // A failed read keeps the last good reading (budgets rarely change); the error is shown beside it.
        known.set(host.id, { reading: older ? null : (prev?.reading ?? null), readAt: at, error: older ? null : text, older });
      }
    })().finally(() => reading.delete(host.id));
    reading.set(host.id, p);
    return p;
  }

  function advice(host: Host): string {
    return `update the agent on ${host.name}: it is older than this app and cannot report its memory, so starts there are not checked against a budget (or set the host's memory budget by hand)`;
  }

  return {
    async refresh(host, link, options = {}) {
      const k = known.get(host.id);
      if (!options.force && k && deps.now() - k.readAt < HOST_MEMORY_MAX_AGE_MS) return;
      await read(host, link);
    },

    async budget(host, link) {
      if (host.memoryBudgetMiB !== null) return { budgetBytes: host.memoryBudgetMiB * MiB, source: "user", basis: "set by the user" };
      if (!known.get(host.id)?.reading && link) await read(host, link);
      const k = known.get(host.id);
      if (k?.reading) return { budgetBytes: k.reading.budgetBytes, source: "agent", basis: k.reading.basis };
      if (k?.older) return { budgetBytes: null, why: advice(host) };
      return { budgetBytes: null, why: `the memory of ${host.name} is not known${k?.error ? ` (${k.error})` : link ? "" : " (its link is down)"}` };
    },

    view(host) {
      const k = known.get(host.id) ?? null;
      const user = host.memoryBudgetMiB !== null;
      const reading = k?.reading ?? null;
      return {
        budgetBytes: user ? host.memoryBudgetMiB! * MiB : (reading?.budgetBytes ?? null),
        source: user ? "user" : reading ? "agent" : null,
        basis: user ? "set by the user" : (reading?.basis ?? (k?.older ? "unknown: the agent cannot report it" : "not read yet")),
        reading,
        error: k?.error ?? null,
        advice: k?.older ? advice(host) : null,
      };
    },
  };
}
