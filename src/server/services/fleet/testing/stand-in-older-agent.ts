/**
 * stand-in-older-agent: the real agent behind its link, seen as an agent
 * from before `hello.features`, `ServerStatus.cause` and
 * `ServerStatus.stopIncomplete` (a checkout on a Mac not yet updated): hello
 * names no features, no status or event carries a cause or a stopIncomplete
 * (a stop that left the port held says so only in its reason's words), and a
 * `stop` given a `cause` or a `logs` given a `grep` is refused (their params
 * were strict). Only these
 * additive fields are taken away; everything else is the real agent's.
 */
import type { HostLink } from "synapse-host-agent/link";
import type { AgentEvent, ServerStatus } from "synapse-host-agent/protocol";
import type { LinkPool } from "../links";

/** `value` (a call's result: one status, a list of them, or anything else) with each status seen through `view`. */
function mapStatuses<T>(value: T, view: (s: ServerStatus) => ServerStatus): T {
  if (Array.isArray(value)) return value.map((v: unknown) => mapStatuses(v, view)) as T;
  if (value && typeof value === "object" && "state" in value && "id" in value) return view(value as unknown as ServerStatus) as T;
  return value;
}

function asOlderStatus(s: ServerStatus): ServerStatus {
  const { cause: _cause, stopIncomplete: _stopIncomplete, ...rest } = s;
  return rest;
}

function olderLink(link: HostLink): HostLink {
  return new Proxy(link, {
    get(target, prop, receiver) {
      if (prop === "call") {
        return async (method: string, params: unknown, options?: unknown) => {
          // Its `stop` and `stopAll` params were strict and had no `cause` (stop-with-cause, shutdown-cause): it refused the field.
          if ((method === "stop" || method === "stopAll") && params && typeof params === "object" && "cause" in params) throw new Error(`invalid params for ${method}: unrecognized key "cause"`);
          // Nor did it have the methods added since (log-note's logNote): an unknown method.
          if (method === "logNote") throw new Error(`unknown method "${method}"`);
          // Nor had its `logs` a `grep` (log-search).
          if (method === "logs" && params && typeof params === "object" && "grep" in params) throw new Error(`invalid params for ${method}: unrecognized key "grep"`);
          const result: unknown = await (target.call as (m: string, p: unknown, o?: unknown) => Promise<unknown>)(method, params, options);
          if (method === "hello" && result && typeof result === "object") {
            const { features: _features, ...rest } = result as { features?: string[] };
            return rest;
          }
          return result;
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** `pool` with every link it hands out seen through `view` (one view per link). */
export function viewLinks(pool: LinkPool, view: (link: HostLink) => HostLink): LinkPool {
  const viewed = new WeakMap<HostLink, HostLink>();
  const wrap = (link: HostLink): HostLink => {
    let w = viewed.get(link);
    if (!w) viewed.set(link, (w = view(link)));
    return w;
  };
  return {
    ...pool,
    get: async (host) => wrap(await pool.get(host)),
    peek: (hostId) => {
      const l = pool.peek(hostId);
      return l ? wrap(l) : undefined;
    },
  };
}

/**
 * `pool` with every server status its agents report seen through `view`: in call results (start, stop,
 * status, stopAll) and in state events, both the links' own and the pool's.
 */
export function viewStatuses(pool: LinkPool, view: (s: ServerStatus) => ServerStatus): LinkPool {
  const viewEvent = (e: AgentEvent): AgentEvent => (e.kind === "state" ? { ...e, status: view(e.status) } : e);
  const viewed = viewLinks(pool, (link) =>
    new Proxy(link, {
      get(target, prop, receiver) {
        if (prop === "call") {
          return async (method: string, params: unknown, options?: unknown) =>
            mapStatuses(await (target.call as (m: string, p: unknown, o?: unknown) => Promise<unknown>)(method, params, options), view);
        }
        if (prop === "onEvent") return (listener: (e: AgentEvent) => void) => target.onEvent((e) => listener(viewEvent(e)));
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }),
  );
  return { ...viewed, onEvent: (listener) => pool.onEvent((hostId, e) => listener(hostId, viewEvent(e))) };
}

/** The pool with every link seen as an older agent's. */
export function standInOlderAgents(pool: LinkPool): LinkPool {
  return viewStatuses(viewLinks(pool, olderLink), asOlderStatus);
}

/**
 * stand-in-agent-before-FEATURE: the real agent behind each link, seen as the release before `feature` (a
 * cause newer than stop-with-cause): its hello names every feature but that one, and a `stop` or `stopAll`
 * given that feature's cause is refused, as its strict params refused a cause it did not know.
 */
export function standInAgentsBefore(pool: LinkPool, feature: "restart-cause" | "shutdown-cause"): LinkPool {
  const cause = feature === "restart-cause" ? "restart" : "shutdown";
  return viewLinks(pool, (link) =>
    new Proxy(link, {
      get(target, prop, receiver) {
        if (prop === "call") {
          return async (method: string, params: unknown, options?: unknown) => {
            if ((method === "stop" || method === "stopAll") && (params as { cause?: unknown } | null)?.cause === cause) throw new Error(`invalid params for ${method}: cause: invalid enum value '${cause}'`);
            const result: unknown = await (target.call as (m: string, p: unknown, o?: unknown) => Promise<unknown>)(method, params, options);
            if (method === "hello" && result && typeof result === "object") {
              const hello = result as { features?: string[] };
              return { ...hello, features: (hello.features ?? []).filter((f) => f !== feature) };
            }
            return result;
          };
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }),
  );
}
