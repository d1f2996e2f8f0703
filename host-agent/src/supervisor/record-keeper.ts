/**
 * One server's record writes and its removal, in order: a late write must
 * never resurrect a removed record. `pending` says whether the record on
 * disk is behind (a server is reported ready only once it is not: a new
 * agent adopts from it).
 */
import type { Logger } from "./logger.ts";
import type { RecordStore, ServerRecord } from "./records.ts";

export class RecordKeeper {
  current: ServerRecord | null = null;
  private io: Promise<void> = Promise.resolve();
  private pendingCount = 0;

  constructor(
    private readonly id: string,
    private readonly store: RecordStore,
    private readonly log: Logger,
  ) {}

  get pending(): boolean {
    return this.pendingCount > 0;
  }

  /** Settles when every write and removal asked so far is done (never rejects). */
  flushed(): Promise<void> {
    return this.io;
  }

  write(rec: ServerRecord): Promise<void> {
    this.current = rec;
    return this.queue(() => this.store.write(rec), "record write failed");
  }

  /**
   * Removes the record (the server is gone): the record of the run this keeper wrote, never a later run's.
   * Records are kept by server id, and another agent on the same state folder may have stopped this run
   * and started the server again before this agent saw the end: the record on disk is then that run's
   * (another pid or start time), and it stays.
   */
  remove(): Promise<void> {
    const mine = this.current;
    return this.queue(async () => {
      const onDisk = mine ? this.store.readNow(this.id) : null;
      if (mine && onDisk && onDisk !== "missing" && (onDisk.pid !== mine.pid || onDisk.startToken !== mine.startToken)) {
        this.log.info("record of a later run left in place", { id: this.id, pid: mine.pid, laterPid: onDisk.pid });
        return;
      }
      await this.store.remove(this.id);
    }, "record removal failed");
  }

  private queue(op: () => Promise<void>, failure: string): Promise<void> {
    this.pendingCount += 1;
    this.io = this.io
      .then(op)
      .catch((err) => this.log.warn(failure, { id: this.id, error: err }))
      .finally(() => void (this.pendingCount -= 1));
    return this.io;
  }
}
