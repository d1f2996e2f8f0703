/**
 * stand-in-older-agent: the real agent behind its link, seen as an agent
 * from before `hello.features` and `ServerStatus.cause` (a checkout on a Mac
 * not yet updated): hello names no features, no status or event carries a
 * cause, and a `stop` given a `cause` is refused (its params were strict). Only these two additive fields are taken away; everything else is
 * the real agent's.
 */
import type { HostLink } from "synapse-host-agent/link";
import type { AgentEvent, ServerStatus } from "synapse-host-agent/protocol";
import type { LinkPool } from "../links";

function withoutCause<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withoutCause) as T;
  if (value && typeof value === "object" && "state" in value && "id" in value) {
    const { cause: _cause, ...rest } = value as unknown as ServerStatus;
    return rest as T;
  }
  return value;
}

function olderEvent(e: AgentEvent): AgentEvent {
  return e.kind === "state" ? { ...e, status: withoutCause(e.status) } : e;
}

function olderLink(link: HostLink): HostLink {
  return new Proxy(link, {
    get(target, prop, receiver) {
      if (prop === "call") {
        return async (method: string, params: unknown, options?: unknown) => {
          // Its `stop` and `stopAll` params were strict and had no `cause` (stop-with-cause, shutdown-cause): it refused the field.
          if ((method === "stop" || method === "stopAll") && params && typeof params === "object" && "cause" in params) throw new Error(`invalid params for ${method}: unrecognized key "cause"`);
          const result: unknown = await (target.call as (m: string, p: unknown, o?: unknown) => Promise<unknown>)(method, params, options);
          if (method === "hello" && result && typeof result === "object") {
            const { features: _features, ...rest } = result as { features?: string[] };
            return rest;
          }
          return withoutCause(result);
        };
      }
      if (prop === "onEvent") return (listener: (e: AgentEvent) => void) => target.onEvent((e) => listener(olderEvent(e)));
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

/** The pool with every link seen as an older agent's. */
export function standInOlderAgents(pool: LinkPool): LinkPool {
  return { ...viewLinks(pool, olderLink), onEvent: (listener) => pool.onEvent((hostId, e) => listener(hostId, olderEvent(e))) };
}
