/**
 * Following one server's log: its new lines go out as log events, and its
 * size cap is kept. While the server loads, lines are read as they come (one
 * of them says it is ready); after that, reads are batched
 * (AGENT_DEFAULTS.logFollowMs: quick for a person watching, few reads while
 * other servers of a start-all still load).
 *
 * The size cap is checked AGENT_DEFAULTS.logCapCheckAfterWriteMs (5 ms)
 * after a write the watch reports, once for all the writes of that time (a
 * stat each; llama-server writes each log line on its own, and a check per
 * write cost the app's event loop a stat and a callback per line, beside the
 * gateway's relay of the answer those lines describe). Past the cap the log
 * is rotated a moment later (AGENT_DEFAULTS.logRotateDelayMs: a burst of
 * lines ends in the same file, rather than each write past the cap rotating a
 * nearly empty file over the last copy), and at once past cap +
 * AGENT_DEFAULTS.logCapSlackBytes (256 KiB). So the file stays within cap +
 * 256 KiB + what the server writes before the agent checks and rotates (5 ms:
 * 100 KB at 20 MB/s; the copy runs at once, synchronously; milliseconds,
 * ~0.1 s on this loaded 2-core machine: up to ~1.6 MiB at 20 MB/s): within
 * cap + 2 MiB even at 20 MB/s. A timer checks too, for file systems whose
 * watch misses writes.
 */
import { statSync, watch, type FSWatcher } from "node:fs";
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
  private rotating = false;
  private rotateSoon: NodeJS.Timeout | null = null;
  /** The size check due after the writes reported since the last one. */
  private capCheck: NodeJS.Timeout | null = null;

  constructor(private readonly o: LogWatchOptions) {
    this.follower = new LogFollower(o.logPath, o.fromOffset, o.onLines);
    try {
      this.watcher = watch(o.logPath, { persistent: false }, () => {
        this.follow();
        if (this.capCheck) return;
        this.capCheck = setTimeout(() => {
          this.capCheck = null;
          this.keepCap();
        }, AGENT_DEFAULTS.logCapCheckAfterWriteMs);
        this.capCheck.unref();
      });
      this.watcher.on("error", () => undefined);
    } catch {
      this.watcher = null; // the timer below still follows the file
    }
    this.follow(); // what was written before the watch began
    this.timer = setInterval(() => {
      this.follow();
      this.keepCap();
    }, AGENT_DEFAULTS.logCapCheckMs);
    this.timer.unref(); // never keeps a one-shot CLI alive
  }

  /** Rotates the log when it is over its cap: soon, or at once when far over (one rotation at a time). */
  private keepCap(): void {
    if (this.rotating) return;
    let size: number;
    try {
      size = statSync(this.o.logPath).size;
    } catch {
      return; // not there (yet, or any more)
    }
    if (size <= this.o.maxBytes) return;
    if (size <= this.o.maxBytes + AGENT_DEFAULTS.logCapSlackBytes) {
      this.rotateSoon ??= setTimeout(() => {
        this.rotateSoon = null;
        this.rotate();
      }, AGENT_DEFAULTS.logRotateDelayMs);
      this.rotateSoon.unref();
      return;
    }
    this.rotate();
  }

  private rotate(): void {
    if (this.rotating) return;
    if (this.rotateSoon) clearTimeout(this.rotateSoon);
    this.rotateSoon = null;
    this.rotating = true;
    void enforceLogCap(this.o.logPath, this.o.maxBytes)
      .catch((err) => this.o.log.warn("log rotation failed", { logPath: this.o.logPath, error: err }))
      .finally(() => (this.rotating = false));
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
    if (this.rotateSoon) clearTimeout(this.rotateSoon);
    if (this.capCheck) clearTimeout(this.capCheck);
    this.capCheck = null;
    this.watcher?.close();
    this.watcher = null;
    return this.follower.finish();
  }
}
