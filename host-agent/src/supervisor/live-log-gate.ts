/**
 * A bound on the live log lines one server sends as events: a token bucket
 * (AGENT_DEFAULTS.liveLogLinesPerSecond, bursts up to liveLogBurstLines).
 * Lines over it are not sent, only counted; the next line that goes out is
 * preceded by a note saying how many were skipped and the log file that has them.
 * A server writing 20 MB/s of logs would otherwise send all of it to every
 * browser watching. The agent's own lines (a run's header and its last line,
 * run-header.ts) always go out, over the budget too: two a run, and the last
 * one is how the run ended, which a flood before a stop or a crash would
 * otherwise keep from the live log.
 */
import { AGENT_DEFAULTS } from "../env.ts";
import { AGENT_LINE_PREFIX } from "../shared/run-header.ts";

export class LiveLogGate {
  private tokens: number;
  private last: number;
  private skipped = 0;
  private timer: NodeJS.Timeout | null = null;

  private readonly perSecond: number;
  private readonly burst: number;
  private readonly now: () => number;
  private readonly file: string | null;

  /**
   * @param emit receives the lines to send, in order (notes included)
   * @param options `perSecond`: sustained lines per second; `burst`: lines that may go out at once after a
   *   quiet spell; `now`: a clock in milliseconds (tests pass their own); `file`: the log file the skipped lines
   *   are in, named by the note (so a reader knows where to find them)
   */
  constructor(
    private readonly emit: (lines: string[]) => void,
    options: { perSecond?: number; burst?: number; now?: () => number; file?: string | null } = {},
  ) {
    this.perSecond = options.perSecond ?? AGENT_DEFAULTS.liveLogLinesPerSecond;
    this.burst = options.burst ?? AGENT_DEFAULTS.liveLogBurstLines;
    this.now = options.now ?? (() => performance.now());
    this.file = options.file ?? null;
    this.tokens = this.burst;
    this.last = this.now();
  }

  /** Lines read from the log, in order. */
  push(lines: readonly string[]): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.perSecond) / 1000);
    this.last = t;
    const out: string[] = [];
    if (this.skipped > 0 && this.tokens >= 1) {
      out.push(this.note());
      this.tokens -= 1;
    }
    for (const line of lines) {
      if (this.tokens >= 1) {
        out.push(line);
        this.tokens -= 1;
      } else if (line.startsWith(AGENT_LINE_PREFIX)) {
        // Over the budget: the agent's own line still goes out, after the note for what was skipped before it.
        if (this.skipped > 0) out.push(this.note());
        out.push(line);
      } else this.skipped += 1;
    }
    if (out.length > 0) this.emit(out);
    // Skipped lines are told about even when no further line comes.
    if (this.skipped > 0 && !this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.push([]);
      }, Math.max(10, 1000 / this.perSecond));
      this.timer.unref();
    }
  }

  /** Sends the note for lines skipped so far, whatever the budget (the server is gone). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.skipped > 0) this.emit([this.note()]);
  }

  private note(): string {
    const n = this.skipped;
    this.skipped = 0;
    return `[synapse host-agent] ${n} log line${n === 1 ? "" : "s"} skipped here (more than ${this.perSecond} lines/s); the log file has them${this.file ? ` (${this.file})` : ""}`;
  }
}
