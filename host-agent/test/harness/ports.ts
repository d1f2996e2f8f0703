/**
 * Free loopback ports for tests.
 *
 * A port handed out here is bound later (by a llama-server, an sshd, an app
 * server), so between the check and the bind another process must not take
 * it. Ports the OS picks (`listen(0)`) come from the ephemeral range, where
 * every other test process's `listen(0)` and every client socket's local port
 * come from too; two test files running at once could be handed the same
 * one. So each vitest worker gets its own block below the ephemeral range
 * (Linux's default is 32768–60999, `/proc/sys/net/ipv4/ip_local_port_range`)
 * and picks in it at random (as the OS would: tests must not count on two
 * ports being next to each other), skipping a port something already holds
 * or that this process handed out before. Where the
 * ephemeral range starts too low for the blocks, the OS picks, as before.
 */
import { readFileSync } from "node:fs";
import net from "node:net";

/** The blocks: BLOCK_SIZE ports each from BLOCKS_FROM up to the ephemeral range. */
const BLOCKS_FROM = 20_000;
const BLOCK_SIZE = 400;

const handedOut = new Set<number>();

/** The low end of the ephemeral range; 32768 (Linux's default) where it cannot be read. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** Blocks kept for vitest's workers (VITEST_POOL_ID 1–8); other processes take one of the rest. */
const WORKER_BLOCKS = 8;

/**
 * This process's block, [from, to), or null when none fits. A vitest worker's
 * is fixed by VITEST_POOL_ID (1-based, between 1 and maxWorkers: files that run
 * at once have different ids); any other process (a bench, a global setup)
 * takes one of the blocks after those, by pid.
 */
function ownBlock(): { from: number; to: number } | null {
  const blocks = Math.floor((ephemeralLow() - BLOCKS_FROM) / BLOCK_SIZE);
  if (blocks <= WORKER_BLOCKS) return null;
  const pool = Number(process.env.VITEST_POOL_ID);
  const index = Number.isInteger(pool) && pool > 0 ? (pool - 1) % WORKER_BLOCKS : WORKER_BLOCKS + (process.pid % (blocks - WORKER_BLOCKS));
  const from = BLOCKS_FROM + index * BLOCK_SIZE;
  return { from, to: from + BLOCK_SIZE };
}

const block = ownBlock();

/** True when a listener can bind 127.0.0.1:port now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

function osPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen({ port: 0, host: "127.0.0.1", exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * A loopback port nothing listens on, not handed out before by this process.
 * Throws after 50 tries found none (or half of the block was handed out already).
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    let p: number;
    if (block) {
      if (handedOut.size >= BLOCK_SIZE / 2) break;
      p = block.from + Math.floor(Math.random() * BLOCK_SIZE);
      if (handedOut.has(p) || !(await bindable(p))) continue;
    } else {
      p = await osPort();
      if (p < 1024 || handedOut.has(p)) continue;
    }
    handedOut.add(p);
    return p;
  }
  throw new Error(block ? `no free loopback port in ${block.from}–${block.to - 1} after 50 tries` : "no free loopback port after 50 tries");
}

export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await freePort());
  return out;
}

/** Holds a port open (listening) until `close` — a stand-in for "another program uses this port". */
export function holdPort(port: number, host = "127.0.0.1"): Promise<{ close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((s) => s.destroy());
    srv.once("error", reject);
    srv.listen({ port, host }, () => resolve({ close: () => new Promise<void>((r) => srv.close(() => r())) }));
  });
}
