/**
 * Whether the process answering on a server's port is that server (fault:
 * a foreign process that took the port after the pre-spawn check answered
 * /health 200, and the model was reported ready though our server never
 * listened).
 *
 * Linux: the listening socket's inode (/proc/net/tcp{,6}) must be among the
 * open files of the server's own process (a handful of fds: read at once), or
 * of one of its descendants. Elsewhere: llama-server's `/props` names the
 * model it loaded (`model_path`, the path the agent passed), and when it does
 * not, lsof names the listener's pid.
 */
import http from "node:http";
import { readdirSync, readlinkSync } from "node:fs";
import { findPortListener, linuxListenInodes, type PortHolder } from "./port.ts";

export type Ownership = { ours: true } | { ours: false; holder: PortHolder };

/**
 * Ownership, and for "ours" whether the listener was seen to be the server's (`seen`: its socket among the
 * server's open files, or its pid the server's) rather than not found at all (which counts as ours).
 */
export type OwnershipSeen = { ours: true; seen: boolean } | { ours: false; holder: PortHolder };

function fdsHoldSocket(pid: number, sockets: Set<string>): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (sockets.has(readlinkSync(`/proc/${pid}/fd/${fd}`))) return true;
    } catch {
      // closed while we looked
    }
  }
  return false;
}

/** GET /props and its `model_path`; null when the server does not say. */
export function propsModelPath(host: string, port: number, timeoutMs: number, apiKey?: string): Promise<string | null> {
  return new Promise((resolve) => {
    const headers = apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` };
    const req = http.get({ host, port, path: "/props", agent: false, timeout: timeoutMs, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        if (body.length < 1 << 20) body += c;
      });
      res.on("end", () => {
        try {
          const v = (JSON.parse(body) as { model_path?: unknown }).model_path;
          resolve(typeof v === "string" ? v : null);
        } catch {
          resolve(null);
        }
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(null));
  });
}

export interface OwnershipQuery {
  port: number;
  host: string;
  /** The server's pid, then its known descendants (asked only when the first does not hold the socket). */
  pid: number;
  descendants: () => Promise<number[]>;
  /** The model path the agent passed with --model. */
  modelPath: string;
  /** The server's API key, when it has one (/props asks for it). */
  apiKey?: string;
}

/**
 * Whose listener answered. Unknown (the OS shows no listener for the port,
 * or /proc cannot be read) counts as ours: the probe reached a listener in
 * this network namespace, and refusing there would stop every start.
 */
export async function listenerOwnership(q: OwnershipQuery, platform: NodeJS.Platform = process.platform): Promise<Ownership> {
  const o = await listenerOwnershipSeen(q, platform);
  return o.ours ? { ours: true } : o;
}

/** listenerOwnership, saying whether a listener "ours" was seen to be the server's or not found. */
export async function listenerOwnershipSeen(q: OwnershipQuery, platform: NodeJS.Platform = process.platform): Promise<OwnershipSeen> {
  if (platform === "linux") {
    // IPv4 first: a server bound to an IPv4 address (the default) is found there and /proc/net/tcp6 is not
    // read. Listing tcp6 makes the kernel walk every established and TIME_WAIT socket of the host even when
    // it lists none (about 1 ms per look here with a few hundred TIME_WAIT sockets: 20 % of an N=16 start).
    let listeners = 0;
    for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      const inodes = await linuxListenInodes(q.port, [file]);
      if (inodes.size === 0) continue;
      listeners += inodes.size;
      const sockets = new Set([...inodes].map((i) => `socket:[${i}]`));
      if (fdsHoldSocket(q.pid, sockets)) return { ours: true, seen: true };
      for (const pid of await q.descendants()) if (fdsHoldSocket(pid, sockets)) return { ours: true, seen: true };
    }
    if (listeners === 0) return { ours: true, seen: false };
  } else {
    if ((await propsModelPath(q.host, q.port, 1000, q.apiKey)) === q.modelPath) return { ours: true, seen: true };
    const h = await findPortListener(q.port, platform);
    if (!h || h.pid === null) return { ours: true, seen: false };
    if (h.pid === q.pid || (await q.descendants()).includes(h.pid)) return { ours: true, seen: true };
    return { ours: false, holder: h };
  }
  return { ours: false, holder: (await findPortListener(q.port, platform)) ?? { port: q.port, pid: null, command: null } };
}

export function describeForeign(h: PortHolder): string {
  return `port ${h.port} is answered by ${h.pid === null ? "a process not visible to this user" : `pid ${h.pid}${h.command ? ` (${h.command})` : ""}`}, not by this server`;
}
