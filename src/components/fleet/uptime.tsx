"use client";
import { ALIVE_STATES } from "synapse-host-agent/server-states";
import { useNow } from "~/components/live/now";
import { formatDuration, toTime } from "./format";

const RUNNING = ALIVE_STATES;

/** Time since the process started, ticking; "—" when not running. */
export function Uptime({ state, startedAt }: { state: string; startedAt: string | Date | null | undefined }) {
  const now = useNow();
  const since = toTime(startedAt);
  const text = RUNNING.has(state) && since !== null && now !== null ? formatDuration(now - since) : "—";
  return <span className="num nowrap">{text}</span>;
}
