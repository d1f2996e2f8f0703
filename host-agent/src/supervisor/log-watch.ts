/**
 * Following one server's log: its new lines go out as log events, and its
 * size cap is kept. While the server loads, lines are read as they come (one
 * of them says it is ready); after that, reads are batched
 * (AGENT_DEFAULTS.logFollowMs: quick for a person watching, few reads while
 * other servers of a start-all still load).
 */
import { watch, type FSWatcher } from "node:fs";
import { AGENT_DEFAULTS } from "../env.ts";
import { enforceLogCap, LogFollower } from "./log-file.ts";
import type { Logger } from "./logger.ts";

export interface LogWatchOptions {
  logPath: string;
  fromOffset: number;
  maxBytes: number;
  log: Logger;
  /** Lines read since the last call, in order. */
  onLines: (lines: string[]) => void;
  /** True while the server loads: every write is read at once. */
  loading: () => boolean;
}

export class LogWatch {
  readonly follower: LogFollower;
  private watcher: FSWatcher | null = null;
  private readonly timer: NodeJS.Timeout;
  private followScheduled = false;

  constructor(private readonly o: LogWatchOptions) {
    this.follower = new LogFollower(o.logPath, o.fromOffset, o.onLines);
    try {
      this.watcher = watch(o.logPath, { persistent: false }, () => this.follow());
      this.watcher.on("error", () => undefined);
    } catch {
      this.watcher = null; // the timer below still follows the file
    }
    this.follow(); // what was written before the watch began
    this.timer = setInterval(() => {
      this.follow();
      void enforceLogCap(o.logPath, o.maxBytes).catch((err) => o.log.warn("log rotation failed", { logPath: o.logPath, error: err }));
    }, AGENT_DEFAULTS.logCapCheckMs);
    this.timer.unref(); // never keeps a one-shot CLI alive
  }

  private follow(): void {
    if (this.o.loading()) {
      void this.follower.poke().catch(() => undefined);
      return;
    }
    if (this.followScheduled) return;
    this.followScheduled = true;
    setTimeout(() => {
      this.followScheduled = false;
      void this.follower.poke().catch(() => undefined);
    }, AGENT_DEFAULTS.logFollowMs).unref();
  }

  /** Stops watching; the lines written since the last read still go out. Resolves when they have. */
  finish(): Promise<void> {
    clearInterval(this.timer);
    this.watcher?.close();
    this.watcher = null;
    return this.follower.finish();
  }
}
