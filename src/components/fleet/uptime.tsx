"use client";
import { useNow } from "~/components/live/now";
import { formatDuration, toTime } from "./format";

const RUNNING = new Set(["starting", "ready", "unhealthy", "stopping"]);

/** Time since the process started, ticking; "—" when not running. */
export function Uptime({ state, startedAt }: { state: string; startedAt: string | Date | null | undefined }) {
  const now = useNow();
  const since = toTime(startedAt);
  const text = RUNNING.has(state) && since !== null && now !== null ? formatDuration(now - since) : "—";
  return <span className="num nowrap">{text}</span>;
}
