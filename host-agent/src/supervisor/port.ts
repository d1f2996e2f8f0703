/**
 * Is a TCP port free, and if not, who holds it? On Linux a bind test is the
 * whole answer (the kernel refuses our bind beside any listener on the port).
 * macOS (BSD sockets, SO_REUSEADDR) lets a bind succeed beside a listener on
 * another or the wildcard address, so there a connect test on every address a
 * listener could use completes it. Naming the holder (/proc on Linux, lsof on
 * macOS) happens only once the port is known to be taken: lsof takes a tenth
 * of a second or more on a Mac, too slow for every start.
 */
import { execFile } from "node:child_process";
import net from "node:net";
import os from "node:os";
import { closeSync, openSync, readSync } from "node:fs";
import { readdir, readlink } from "node:fs/promises";
import { isWildcardBind } from "./health.ts";
import { commandName } from "./process-table.ts";

export interface PortHolder {
  port: number;
  pid: number | null;
  command: string | null;
}

/**
 * Tries to listen on host:port and closes at once. Answers as soon as close()
 * is called: the socket is closed then (only the callback waits for the next
 * turn of the loop), so the port is free for the server spawned next.
 */
export function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => {
      srv.close();
      resolve(true);
    });
  });
}

/**
 * Inodes of the sockets listening on `port` (IPv4 and IPv6), from
 * /proc/net/tcp{,6}. The kernel lists listening sockets first, then every
 * other connection (TIME_WAIT included: thousands on a busy host, 5-30 ms to
 * generate here under load); the read stops at the first line that is not a
 * listener, so the cost is that of the listeners alone (~0.2 ms). Read
 * synchronously: procfs answers from kernel memory. A kernel that mixed
 * other states into the listening part would make this miss a listener,
 * which callers treat as "not known" (never as "foreign").
 */
export async function linuxListenInodes(port: number, files: readonly string[] = ["/proc/net/tcp", "/proc/net/tcp6"]): Promise<Set<string>> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  // Small reads: the kernel makes as many lines as a read asks for, and the listeners come first, so the
  // scan stops before the kernel walks the table of established and TIME_WAIT sockets.
  const buf = Buffer.allocUnsafe(1024);
  for (const file of files) {
    let fd: number;
    try {
      fd = openSync(/*turbopackIgnore: true*/ file, "r");
    } catch {
      continue; // no IPv6 in this kernel
    }
    try {
      let rest = "";
      let header = true;
      scan: for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) {
        const lines = (rest + buf.toString("latin1", 0, n)).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) {
          if (header) {
            header = false;
            continue;
          }
          const f = line.trim().split(/\s+/);
          // local_address is "ADDR:PORT" in hex, st 0A is LISTEN, inode is field 9.
          const local = f[1];
          if (!local) continue;
          if (f[3] !== "0A") break scan;
          if (local.slice(local.lastIndexOf(":") + 1) === hexPort && f[9]) inodes.add(f[9]);
        }
      }
    } finally {
      closeSync(fd);
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
export async function findPortListener(port: number, platform: NodeJS.Platform = process.platform): Promise<PortHolder | null> {
  if (platform === "linux") {
    const inodes = await linuxListenInodes(port);
    if (inodes.size === 0) return null;
    const pid = await linuxSocketOwner(inodes);
    return { port, pid, command: pid === null ? null : await commandName(pid) };
  }
  return lsofListener(port);
}

/** Whether something accepts a TCP connection on host:port. No answer within the time counts as taken (a listener with a full queue). */
export function acceptsConnections(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: host.replace(/^\[|\]$/g, ""), port });
    const done = (taken: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(taken);
    };
    const timer = setTimeout(() => done(true), timeoutMs);
    socket.once("connect", () => done(true));
    // Refused: nothing listens there. Unreachable or not a local address: nothing of ours could either.
    socket.once("error", () => done(false));
  });
}

/**
 * The addresses where a listener would take connections meant for a server
 * bound to `host`: loopback (where wildcard listeners answer too), the host
 * itself, and for a wildcard bind every address of this machine.
 */
export function addressesToProbe(host: string, interfaces = os.networkInterfaces()): string[] {
  const out = new Set<string>(["127.0.0.1", "::1"]);
  if (!isWildcardBind(host)) out.add(host);
  else {
    for (const list of Object.values(interfaces)) {
      for (const a of list ?? []) if (!a.address.toLowerCase().startsWith("fe80:")) out.add(a.address); // link-local needs a scope; loopback covers the machine
    }
  }
  return [...out];
}

/**
 * Null when the port is free for `host`; otherwise who holds it (pid and
 * command null when that is not visible). `platform` is the OS's rules to
 * apply (tests run the macOS rules on Linux).
 */
export async function portHolder(port: number, host: string, platform: NodeJS.Platform = process.platform): Promise<PortHolder | null> {
  let taken: boolean;
  if (platform === "linux") {
    taken = !(await canBind(port, host));
  } else {
    const [bindable, answers] = await Promise.all([canBind(port, host), Promise.all(addressesToProbe(host).map((a) => acceptsConnections(a, port)))]);
    taken = !bindable || answers.some(Boolean);
  }
  if (!taken) return null;
  return (await findPortListener(port, platform)) ?? { port, pid: null, command: null };
}

export function describeHolder(h: PortHolder): string {
  if (h.pid === null) return `port ${h.port} is in use (holder not visible to this user)`;
  return `port ${h.port} is held by pid ${h.pid}${h.command ? ` (${h.command})` : ""}`;
}
