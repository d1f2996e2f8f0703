/**
 * Is a TCP port free, and if not, who holds it? Two independent checks:
 * a bind test (portable, exact for this address family) and a listener
 * lookup (/proc on Linux, lsof on macOS) that also names the holder. macOS
 * lets a specific-address bind succeed beside a wildcard listener, so the
 * bind test alone is not enough there.
 */
import { execFile } from "node:child_process";
import net from "node:net";
import { readFile, readdir, readlink } from "node:fs/promises";
import { commandName } from "./process-table.ts";

export interface PortHolder {
  port: number;
  pid: number | null;
  command: string | null;
}

/** Tries to listen on host:port and closes at once. */
export function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

async function linuxListenInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await readFile(/*turbopackIgnore: true*/ file, "utf8");
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is "ADDR:PORT" in hex, st 0A is LISTEN, inode is field 9.
      const local = f[1];
      if (!local || f[3] !== "0A") continue;
      if (local.slice(local.lastIndexOf(":") + 1) === hexPort && f[9]) inodes.add(f[9]);
    }
  }
  return inodes;
}

async function linuxSocketOwner(inodes: Set<string>): Promise<number | null> {
  const wanted = new Set([...inodes].map((i) => `socket:[${i}]`));
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${name}/fd`);
    } catch {
      continue; // exited, or not ours to look at
    }
    for (const fd of fds) {
      try {
        if (wanted.has(await readlink(`/proc/${name}/fd/${fd}`))) return Number(name);
      } catch {
        // fd closed while we looked
      }
    }
  }
  return null;
}

function lsofListener(port: number): Promise<PortHolder | null> {
  return new Promise((resolve) => {
    execFile("lsof", ["-nP", `-iTCP:${port}`, "-sTCP:LISTEN", "-Fpc"], { timeout: 5000, encoding: "utf8" }, (err, stdout) => {
      // lsof exits 1 when nothing matches; a missing lsof is "unknown", not "free".
      if (err && !stdout) return resolve(null);
      const pid = /^p(\d+)$/m.exec(stdout)?.[1];
      const cmd = /^c(.+)$/m.exec(stdout)?.[1];
      resolve(pid ? { port, pid: Number(pid), command: cmd ?? null } : null);
    });
  });
}

/** The process listening on `port`, when the OS lets us see it. */
export async function findPortListener(port: number): Promise<PortHolder | null> {
  if (process.platform === "linux") {
    const inodes = await linuxListenInodes(port);
    if (inodes.size === 0) return null;
    const pid = await linuxSocketOwner(inodes);
    return { port, pid, command: pid === null ? null : await commandName(pid) };
  }
  return lsofListener(port);
}

/** Null when the port is free for `host`; otherwise who holds it (pid/command null when unknown). */
export async function portHolder(port: number, host: string): Promise<PortHolder | null> {
  if (process.platform === "linux") {
    // Linux refuses our exclusive bind beside any listener on the port (wildcard
    // or specific), so the bind test is the answer; /proc only names the holder.
    if (await canBind(port, host)) return null;
    return (await findPortListener(port)) ?? { port, pid: null, command: null };
  }
  // BSD/macOS sockets with SO_REUSEADDR let a specific-address bind succeed
  // beside a wildcard listener, so ask lsof first, then try the bind.
  const listener = await findPortListener(port);
  if (listener) return listener;
  return (await canBind(port, host)) ? null : { port, pid: null, command: null };
}

export function describeHolder(h: PortHolder): string {
  if (h.pid === null) return `port ${h.port} is in use (holder not visible to this user)`;
  return `port ${h.port} is held by pid ${h.pid}${h.command ? ` (${h.command})` : ""}`;
}
