/**
 * Following one server's log: its new lines go out as log events, and its
 * size cap is kept. While the server loads, lines are read as they come (one
 * of them says it is ready); after that, reads are batched
 * (AGENT_DEFAULTS.logFollowMs: quick for a person watching, few reads while
 * other servers of a start-all still load).
 *
 * llama-server writes each log line on its own (10-14 writes a completion),
 * and every write the watch reports wakes the event loop, which a local
 * agent shares with the app's fleet and the gateway's bridge. So once a
 * server runs, its watch is closed for AGENT_DEFAULTS.logWatchPauseMs
 * (25 ms) after each report: a busy log wakes it at most 40 times a second,
 * not once a line. While it loads, every report is read at once.
 *
 * The size cap is checked after each chunk the follower reads (at every
 * write while the server loads) and when the watch opens again (a stat).
 * Past the cap the log is rotated a moment later
 * (AGENT_DEFAULTS.logRotateDelayMs: a burst of lines ends in the same file,
 * rather than each write past the cap rotating a nearly empty file over the
 * last copy), and at once past cap + AGENT_DEFAULTS.logCapSlackBytes
 * (256 KiB). A rotation is one synchronous step that never waits for the
 * follower (it reads its unread lines from the copy). So the file stays
 * within cap + 256 KiB + what the server writes before the agent checks and
 * rotates: 25 ms (0.5 MB at 20 MB/s), plus whatever time the agent is held
 * up, by the machine's scheduler or by a busy disk (the rotation's copy is
 * written before the truncation; beside two `dd … conv=fsync` loops a copy
 * of 2.4 MB took up to 0.8 s). A timer checks too, for file systems whose
 * watch misses writes.
 */
import { statSync, watch, type FSWatcher } from "node:fs";
import { AGENT_DEFAULTS } from "../env.ts";
import { enforceLogCap, LogFollower, rotatedPath } from "./log-file.ts";
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
  private rotateSoon: NodeJS.Timeout | null = null;
  /** While the watch is closed after a report (a ready server's log): when it opens again. */
  private reopen: NodeJS.Timeout | null = null;
  private finished = false;
  private reportCount = 0;
  private capAfterRead: NodeJS.Immediate | null = null;

  constructor(private readonly o: LogWatchOptions) {
    this.follower = new LogFollower(o.logPath, o.fromOffset, (lines) => {
      o.onLines(lines);
      this.checkAfterRead();
    });
    this.openWatch();
    this.follow(); // what was written before the watch began
    this.timer = setInterval(() => {
      // A watch that could not be opened (again) is tried once a tick; the tick follows the file meanwhile.
      if (!this.watcher && !this.reopen && !this.finished) this.openWatch();
      this.follow();
      this.keepCap();
    }, AGENT_DEFAULTS.logCapCheckMs);
    this.timer.unref(); // never keeps a one-shot CLI alive
  }

  /** How many writes the file system's watch has reported (each one a wake-up of this process's event loop). */
  get reports(): number {
    return this.reportCount;
  }

  private openWatch(): void {
    try {
      this.watcher = watch(this.o.logPath, { persistent: false }, this.onReport);
      this.watcher.on("error", () => undefined);
    } catch {
      this.watcher = null; // the timer still follows the file
    }
  }

  /**
   * A write the watch reported. While the server loads, every line is read
   * at once (one says it is ready; the read checks the size). Once
   * it runs, the watch is closed for AGENT_DEFAULTS.logWatchPauseMs: the
   * lines are read in the batch this report schedules, and the writes of
   * that time wake nothing (llama-server writes each line on its own).
   */
  private readonly onReport = (): void => {
    this.reportCount += 1;
    if (this.finished) return;
    this.follow();
    if (this.o.loading()) return;
    if (this.reopen) return; // a report queued before the close
    this.watcher?.close();
    this.watcher = null;
    this.reopen = setTimeout(() => {
      this.reopen = null;
      if (this.finished) return;
      this.keepCap();
      this.openWatch();
      // Lines written while the watch was closed and after the batch read: the next batch reads them.
      this.follow();
    }, AGENT_DEFAULTS.logWatchPauseMs);
    this.reopen.unref();
  };

  /** Rotates the log when it is over its cap: soon, or at once when far over. */
  private keepCap(): void {
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

  /**
   * Copy, truncate, and tell the follower, in one synchronous step: the lines
   * it had not read yet are read from the copy (LogFollower.rotated), so the
   * rotation never waits for the reader. A log written faster than it is read
   * still keeps its bound.
   */
  private rotate(): void {
    if (this.rotateSoon) clearTimeout(this.rotateSoon);
    this.rotateSoon = null;
    try {
      const copied = enforceLogCap(this.o.logPath, this.o.maxBytes);
      if (copied !== null) {
        this.follower.rotated(rotatedPath(this.o.logPath), copied);
        this.follow();
      }
    } catch (err) {
      this.o.log.warn("log rotation failed", { logPath: this.o.logPath, error: err });
    }
  }

  /** A size check once the read in progress hands out its lines: a flood read a chunk at a time is checked at every chunk. */
  private readonly checkAfterRead = (): void => {
    if (this.capAfterRead || this.finished) return;
    this.capAfterRead = setImmediate(() => {
      this.capAfterRead = null;
      if (!this.finished) this.keepCap();
    });
  };

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
    this.finished = true;
    clearInterval(this.timer);
    if (this.reopen) clearTimeout(this.reopen);
    this.reopen = null;
    if (this.rotateSoon) clearTimeout(this.rotateSoon);
    if (this.capAfterRead) clearImmediate(this.capAfterRead);
    this.capAfterRead = null;
    this.watcher?.close();
    this.watcher = null;
    return this.follower.finish();
  }
}
