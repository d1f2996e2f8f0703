/**
 * Agent calls held at the link, for tests that need a fleet's call to the agent to stay on its way (a restart's
 * start, an idle unload's stop) for as long as they look: `view` wraps a HostLink (fleetFixture's `viewLinks`,
 * with stand-in-older-agent.ts's viewLinks), and every call whose method is in `gate.holding` waits in
 * `gate.held` until the test releases it (sent on to the real agent) or loses it (ended as a call that never got
 * there). Other calls go straight through.
 */
import type { HostLink } from "synapse-host-agent/link";

/** A call held at the link: `release` sends it on to the agent, `lose` ends it as a call that never got there. */
export interface HeldCall {
  method: string;
  params: unknown;
  release(): void;
  lose(): void;
}

/** Holds every agent call whose method is in `holding` (the real agent behind it otherwise). */
export function callGate() {
  const gate = { holding: new Set<string>(), held: [] as HeldCall[] };
  const view = (link: HostLink): HostLink =>
    new Proxy(link, {
      get(target, prop, receiver) {
        if (prop === "call") {
          return (method: string, params: unknown, options?: unknown) => {
            const call = () => (target.call as (m: string, p: unknown, o?: unknown) => Promise<unknown>)(method, params, options);
            if (!gate.holding.has(method)) return call();
            return new Promise<unknown>((resolve, reject) => {
              gate.held.push({
                method,
                params,
                release: () => call().then(resolve, reject),
                lose: () => reject(new Error(`the ${method} call never reached the agent`)),
              });
            });
          };
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  return { gate, view };
}
