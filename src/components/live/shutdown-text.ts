/**
 * What the banner on every page says while the app shuts down (ShutdownBanner; the fleet's
 * shutdownState, servers.shutdown). Pure. A trial saw the fleet page read Live and every model READY
 * through the whole wait, then only "Reconnecting…": the Activity page alone said the shutdown began.
 *
 *   waiting    new gateway requests refused; the requests in flight, how long it still waits, what comes
 *              next, and how to end the wait (a second Ctrl-C / SIGTERM, boot.ts)
 *   stopping   stopping every server it manages
 *   exiting    leaving the servers running (SYNAPSE_LEAVE_SERVERS_RUNNING)
 *   gone       the page lost the app after that: what it shows is what it last saw
 */
import type { ShutdownView } from "~/server/services/fleet/fleet-types";

/**
 * The banner's text for `view` at `nowMs` (epoch ms; null while rendering on the server: no countdown);
 * `connected`: the page's live stream is up (false: the app is gone, or not back yet).
 */
export function shutdownText(view: ShutdownView, nowMs: number | null, connected: boolean): string {
  if (!connected) return `The app has shut down (${view.stopServers ? "it stopped every server it manages" : "it left its servers running: its next start takes them over"}). This page shows what it last saw, and reconnects when the app is back.`;
  if (view.phase === "stopping") return "The app is shutting down: stopping every server it manages.";
  if (view.phase === "exiting") return "The app is shutting down, leaving its servers running: its next start takes them over.";
  const left = nowMs === null ? null : Math.max(0, Math.ceil((Date.parse(view.drainUntil) - nowMs) / 1000));
  const requests = view.requestsInFlight === 1 ? "the request in flight" : `the ${view.requestsInFlight} requests in flight`;
  const wait = view.requestsInFlight === 0 ? "" : ` It waits for ${requests}${left === null ? "" : `, ${left} s more at most`}, then goes on ${view.stopServers ? "to stop every server it manages" : "to exit, leaving its servers running"}; a second Ctrl-C (or SIGTERM) ends the wait.`;
  return `The app is shutting down: new gateway requests are refused (503 app_shutting_down).${wait}`;
}
