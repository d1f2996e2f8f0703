/**
 * Spawn batching for a start-all: fork() blocks the event loop for
 * milliseconds, and work between spawns delays the servers started later.
 * Starts asked for together prepare (checks, log) concurrently, spawn back
 * to back in one turn of the loop, and only then do their bookkeeping (the
 * /proc entry, record, log watch, probes).
 */
import { AGENT_DEFAULTS } from "../env.ts";

export class SpawnBatch {
  private spawnWaiters: (() => void)[] = [];
  /** Starts between their entry and their spawn turn. */
  private preparing = 0;
  private settleWaiters: (() => void)[] = [];
  private settleQueued = false;
  private settleDeadline: NodeJS.Timeout | null = null;

  /**
   * Runs a start's preparation. While any start is preparing or waiting for
   * its spawn, the starts already spawned hold back their bookkeeping.
   */
  async prepare<T>(work: () => Promise<T>): Promise<T> {
    this.preparing += 1;
    try {
      return await work();
    } finally {
      this.preparing -= 1;
      this.settle();
    }
  }

  /**
   * Resolves at the end of this turn of the event loop (setImmediate),
   * together with every other start that asks in the same turn: their spawns
   * then run back to back.
   */
  turn(): Promise<void> {
    return new Promise((resolve) => {
      this.spawnWaiters.push(resolve);
      if (this.spawnWaiters.length > 1) return;
      setImmediate(() => {
        const waiters = this.spawnWaiters;
        this.spawnWaiters = [];
        for (const w of waiters) w();
        this.settle();
      });
    });
  }

  /** Resolves once no start is preparing or waiting to spawn, or after AGENT_DEFAULTS.spawnSettleMs. */
  settled(): Promise<void> {
    return new Promise((resolve) => {
      this.settleWaiters.push(resolve);
      this.settleDeadline ??= setTimeout(() => this.release(), AGENT_DEFAULTS.spawnSettleMs);
      this.settle();
    });
  }

  private settle(): void {
    if (this.settleWaiters.length === 0 || this.preparing > 0 || this.spawnWaiters.length > 0 || this.settleQueued) return;
    this.settleQueued = true;
    // setImmediate: a start whose preparation just ended reaches its spawn turn first.
    setImmediate(() => {
      this.settleQueued = false;
      if (this.preparing === 0 && this.spawnWaiters.length === 0) this.release();
    });
  }

  private release(): void {
    if (this.settleDeadline) clearTimeout(this.settleDeadline);
    this.settleDeadline = null;
    const waiters = this.settleWaiters;
    this.settleWaiters = [];
    for (const w of waiters) w();
  }
}
