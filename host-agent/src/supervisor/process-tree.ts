/**
 * A server's descendants, whatever their session or process group: Node has
 * no subreaper, so a child that calls setsid() (or a double fork) leaves the
 * server's group and, once its parent dies, its parentage too. The only way
 * to end it later is to have seen it while its parent lived. So while a
 * server runs, its tree is scanned on a timer (one scan for every server,
 * never per probe) and each server keeps the pids and start times of what it
 * started; a stop looks once more, at the whole process table, before it
 * signals anything.
 *
 * On Linux the timer reads only the servers' trees (see linuxTreeTable: the
 * leader, what is already known, and their children), not every process on
 * the machine; on a kernel without /proc/[pid]/task/[tid]/children, and on
 * macOS (`ps`), it reads the whole table.
 *
 * A child that escapes between two looks (forked and orphaned within one
 * interval) is found on Linux by the marker the agent puts in every server's
 * environment (children inherit it unless they clear it). One that clears it
 * is not found: the stop then reports the port's holder instead of success.
 */
import type { Logger } from "./logger.ts";
import { childrenFilesReadable, environmentHas, linuxTreeTable, procfs, processTable, type ProcReader, type TableEntry } from "./process-table.ts";
import { tokenOrder } from "./terminate.ts";

/** Name of the environment variable that marks a server's processes. */
export const RUN_MARKER_VAR = "SYNAPSE_SERVER_RUN";

export interface TrackedProcess {
  pid: number;
  startToken: string;
  pgid: number;
}

/** The processes one server started, as seen in the scans so far. */
export class Descendants {
  private readonly known = new Map<number, TrackedProcess>();

  /**
   * @param leader the server's own process (its pid leads its group; start token null when it ended before it was read)
   * @param marker `SYNAPSE_SERVER_RUN=<value>` as set in its environment
   */
  constructor(
    readonly leader: { pid: number; startToken: string | null },
    readonly marker: string,
  ) {}

  /**
   * Adds what `table` shows of the server's tree: children of the leader or
   * of any process already known (while it is still the same process), and
   * members of its group that started after it. `markers`: also read the
   * environment of every process started since the leader (a stop does;
   * the timer does not).
   *
   * `table` may be the whole process table or only the rows of the trees
   * (the timer's scan on Linux: see `roots`); either way a known process
   * missing from it, or there under another start token, has ended and is
   * dropped.
   */
  observe(table: readonly TableEntry[], opts: { markers?: boolean } = {}): void {
    const byPid = new Map(table.map((p) => [p.pid, p]));
    const ours = new Set<number>();
    const same = (pid: number, token: string) => {
      const p = byPid.get(pid);
      return p !== undefined && !p.zombie && p.startToken === token;
    };
    const leaderToken = this.leader.startToken;
    if (leaderToken !== null && same(this.leader.pid, leaderToken)) ours.add(this.leader.pid);
    for (const [pid, t] of this.known) {
      if (same(pid, t.startToken)) ours.add(pid);
      else this.known.delete(pid); // ended (or its pid now names another process)
    }
    const later = (p: TableEntry) => {
      if (leaderToken === null) return true;
      const order = tokenOrder(p.startToken, leaderToken);
      return order === null || order >= 0;
    };
    // Parent links first, repeated until nothing new: a tree of any depth in a few passes.
    for (let added = true, passes = 0; added && passes < 64; passes++) {
      added = false;
      for (const p of table) {
        if (p.zombie || ours.has(p.pid)) continue;
        if (ours.has(p.ppid) || (p.pgid === this.leader.pid && later(p))) {
          ours.add(p.pid);
          added = true;
        }
      }
    }
    if (opts.markers) {
      for (const p of table) {
        if (!p.zombie && !ours.has(p.pid) && p.pid !== process.pid && later(p) && environmentHas(p.pid, this.marker, table)) ours.add(p.pid);
      }
    }
    ours.delete(this.leader.pid);
    for (const pid of ours) {
      const p = byPid.get(pid)!;
      this.known.set(pid, { pid, startToken: p.startToken, pgid: p.pgid });
    }
  }

  /**
   * Where a read of this tree alone starts: the leader and every descendant
   * already known (read by pid, since an orphan's parent is no longer ours),
   * each with the start token it must still have.
   */
  roots(): { pid: number; startToken: string | null }[] {
    return [this.leader, ...[...this.known.values()].map((p) => ({ pid: p.pid, startToken: p.startToken }))];
  }

  /** The descendants seen so far and not seen ending. */
  list(): TrackedProcess[] {
    return [...this.known.values()];
  }

  has(pid: number): boolean {
    return this.known.has(pid);
  }
}

/**
 * One timer for every running server: each tick reads the registered
 * servers' trees once (Linux; the whole process table elsewhere, or where
 * the kernel has no children files) and hands the rows to every registered
 * server's `Descendants`.
 */
export class TreeScanner {
  private readonly trees = new Set<Descendants>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  /** Whether a tick reads the trees alone; decided (and said in the log, when not) at the first tick. */
  private treesOnly: boolean | null = null;
  private readonly reader: ProcReader;

  /**
   * @param intervalMs time between ticks; 0 or less: no timer (`scan` is still called by hand)
   * @param opts.reader the /proc reads of a tree scan (tests count them, or take the children files away)
   */
  constructor(
    private readonly intervalMs: number,
    private readonly log: Logger,
    opts: { reader?: ProcReader } = {},
  ) {
    this.reader = opts.reader ?? procfs;
  }

  add(tree: Descendants): void {
    this.trees.add(tree);
    if (this.timer || this.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.scan(), this.intervalMs);
    this.timer.unref();
  }

  remove(tree: Descendants): void {
    this.trees.delete(tree);
    if (this.trees.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** One tick: reads the trees (or the table) and updates every registered tree. A tick while one runs does nothing. */
  async scan(): Promise<void> {
    if (this.busy || this.trees.size === 0) return;
    this.busy = true;
    try {
      const table = this.readsTreesOnly()
        ? linuxTreeTable([...this.trees].flatMap((t) => t.roots()), this.reader)
        : // In slices: this runs once a second beside whatever else the process serves.
          await processTable({ background: true });
      for (const t of this.trees) t.observe(table);
    } catch (err) {
      this.log.warn("process table scan failed", { error: err });
    } finally {
      this.busy = false;
    }
  }

  private readsTreesOnly(): boolean {
    if (this.treesOnly === null) {
      this.treesOnly = childrenFilesReadable(this.reader);
      if (!this.treesOnly && process.platform === "linux") {
        this.log.info("this kernel has no /proc/<pid>/task/<tid>/children (Linux 3.5+, CONFIG_PROC_CHILDREN): the descendant scan reads the whole process table each tick", { intervalMs: this.intervalMs });
      }
    }
    return this.treesOnly;
  }

  close(): void {
    this.trees.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
