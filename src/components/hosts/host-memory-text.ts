/**
 * The words of a host's memory on its Hosts card (host-memory.tsx). While the host cannot be reached
 * (shared/host-reach.ts hostUnreachable, as the fleet page's memory bar decides it), the agent's reading is
 * the one from the last contact, and the words say so with its time: a trial's card read "22.0 GiB free now"
 * with the host's sshd stopped. Pure.
 */

/** The fields of a reading (protocol.ts HostMemory) this reads: bytes, and `at` (ISO) when it was read. */
export interface ReadingFields {
  availableBytes: number | null;
  at: string;
}

/** A clock time ("12:00:46", local) of an ISO time; the ISO text itself when it does not parse. */
export function clockTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toTimeString().slice(0, 8);
}

/**
 * What follows the physical memory: "22.0 GiB free now" while the host is reachable; "22.0 GiB free at last
 * contact, 12:00:46" while it is not (`away`). Null when the agent could not read its free memory.
 * `size`: bytes as the card prints them; `clock`: an ISO time as a clock time (default clockTime).
 */
export function freeMemoryText(r: ReadingFields, away: boolean, size: (bytes: number) => string, clock: (iso: string) => string = clockTime): string | null {
  if (r.availableBytes === null) return null;
  return `${size(r.availableBytes)} free ${away ? `at last contact, ${clock(r.at)}` : "now"}`;
}

/**
 * What the card adds to a budget the agent read (`source` "agent") while the host is away: "as read at last
 * contact, 12:00:46". Null otherwise: a budget set by the user is not a reading, and a reachable host's is current.
 */
export function budgetAgeText(source: "user" | "agent" | null, reading: ReadingFields | null, away: boolean, clock: (iso: string) => string = clockTime): string | null {
  if (!away || source !== "agent" || !reading) return null;
  return `as read at last contact, ${clock(reading.at)}`;
}
