/**
 * Free loopback ports for tests. The OS picks an unused ephemeral port; a
 * per-process set keeps one test file from being handed the same port twice
 * before a server binds it.
 */
import net from "node:net";

const handedOut = new Set<number>();

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

export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await osPort();
    if (p >= 1024 && !handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
  throw new Error("no free loopback port after 50 tries");
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
