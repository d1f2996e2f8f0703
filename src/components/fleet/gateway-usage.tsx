"use client";
import { isAlive } from "synapse-host-agent/server-states";
import { useNow } from "~/components/live/now";
import { restartText } from "~/shared/restart-text";
import styles from "./fleet.module.css";
import type { StatusRow } from "./fleet-view";
import { formatDuration, toTime } from "./format";

/**
 * Under a row's state: a crashed model's planned restart ("restart in 3.0 s"), and what the gateway sees of the model. That it does
 * not serve it (disabled, though it runs), requests in flight, when it was last used, and for an on-demand model that is loaded
 * and unused, the countdown to its idle unload (ticking on the page's clock).
 */
export function GatewayUsage({ row }: { row: StatusRow }) {
  const now = useNow();
  const parts: string[] = [];
  // Crashed, with the restart the app planned: when it comes, in whole seconds, redrawn on the page's clock and read
  // against the time of the drawing (the shared clock may be up to 1 s old when new figures redraw the row).
  const restart = now !== null ? restartText(row, Date.now(), true) : "";
  if (restart) parts.push(restart);
  // Running (a Start of a disabled model is allowed, to try it on its port) but not served: /v1 answers 409.
  if (!row.enabled && isAlive(row.state)) parts.push("disabled: not served by /v1");
  if (row.loadPolicy === "on-demand") parts.push("on demand");
  if (row.inFlight > 0) parts.push(`${row.inFlight} in flight`);
  const last = toTime(row.lastUsedAt);
  if (last !== null && now !== null) parts.push(`used ${formatDuration(now - last)} ago`);
  const unloadAt = toTime(row.idleUnloadAt);
  if (unloadAt !== null && now !== null && row.inFlight === 0) parts.push(`unloads in ${formatDuration(unloadAt - now)}`);
  if (parts.length === 0) return null;
  // Each part stays whole; the line breaks between parts, so a long one does not run into the next column.
  return (
    <span className={styles.usage} data-testid="gateway-usage">
      {parts.map((p, i) => (
        <span key={p.split(" ")[0]}>
          {i > 0 ? " · " : ""}
          <span className={styles.usagePart}>{p}</span>
        </span>
      ))}
    </span>
  );
}
