/**
 * Joins two connections: bytes each way as they come, and when either side
 * closes or fails, both are destroyed (no half-open pair is left behind).
 */
import type { Duplex } from "node:stream";

export function pipeBoth(a: Duplex, b: Duplex): void {
  const end = () => {
    a.destroy();
    b.destroy();
  };
  for (const s of [a, b]) {
    s.once("close", end);
    s.once("error", end);
  }
  a.pipe(b);
  b.pipe(a);
}
