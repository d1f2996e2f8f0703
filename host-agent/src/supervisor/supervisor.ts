/**
 * The supervisor: the agent's table of managed servers (one ManagedServer
 * each) and the operations on them. Operations on one server id run one at a
 * time, in call order (so two concurrent starts of one id give one process);
 * operations on different ids run in parallel. The work of each operation
 * is the server's own (managed-server.ts); starts are batched around their
 * spawns (spawn-batch.ts); adoption is in adoption.ts.
 */
import { randomUUID } from "node:crypto";
import { appendFileSync, closeSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { AGENT_DEFAULTS } from "../env.ts";
import { AgentError, type AgentEvent, type ServerSpec, type ServerStatus } from "../protocol.ts";
import { KeyedQueue } from "../shared/keyed-queue.ts";
import { appNote } from "../shared/run-header.ts";
import { isAlive, type StopCause } from "../shared/server-states.ts";
import { adoptRecords, type AdoptionResult } from "./adoption.ts";
import { describeHeldPort } from "./end-server.ts";
import { HostStops } from "./host-stops.ts";
import { Launcher } from "./launcher.ts";
import { readLogTail } from "./log-file.ts";
import { searchLog } from "./log-search.ts";
import { LogNameTaken, renameLogFiles } from "./log-rename.ts";
import type { Logger } from "./logger.ts";
import { ManagedServer, type ServerContext, type ServerSettings } from "./managed-server.ts";
import { portHolder } from "./port.ts";
import { TreeScanner } from "./process-tree.ts";
import { RecordStore } from "./records.ts";
import { SpawnBatch } from "./spawn-batch.ts";
import { prepareSpawn } from "./spawn-prep.ts";
import { specHash } from "./spec-check.ts";
import { StopNotes } from "./stop-notes.ts";

export interface SupervisorOptions extends ServerSettings {
  stateDir: string;
  modelRoots: string[];
  llamaServerBin: string | null;
  logger: Logger;
  /**
   * Spawn servers from a small helper process (launcher.ts) instead of this
   * one. For agents living inside a big process (the control plane's local
   * link), where each fork() would block the event loop far longer.
   */
  spawnHelper?: boolean;
  /** How often running servers' descendants are looked for in the process table (default AGENT_DEFAULTS.treeScanMs, treeScanPsMs off Linux). */
  treeScanMs?: number;
}

function stoppedStatus(id: string, reason: string | null = null): ServerStatus {
  return { id, state: "stopped", pid: null, port: null, startedAt: null, readyAt: null, exitCode: null, signal: null, reason, logPath: null, specHash: null, logTail: [], cause: null, stopIncomplete: null };
}

export class Supervisor {
  private readonly servers = new Map<string, ManagedServer>();
  private readonly queue = new KeyedQueue<string>();
  private readonly listeners = new Set<(e: AgentEvent) => void>();
  private readonly records: RecordStore;
  private readonly hostStops: HostStops;
  private readonly stopNotes: StopNotes;
  private readonly log: Logger;
  private readonly launcher: Launcher | null;
  private readonly batch = new SpawnBatch();
  private readonly scanner: TreeScanner;
  private readonly ctx: ServerContext;
  private closed = false;
  /** The last log event's seq. Microseconds of the clock at the start, so a later agent's lines sort after this one's. */
  private logSeq = Date.now() * 1000;

  constructor(private readonly opts: SupervisorOptions) {
    this.records = new RecordStore(opts.stateDir);
    this.hostStops = new HostStops(opts.stateDir);
    this.stopNotes = new StopNotes(opts.stateDir);
    this.log = opts.logger;
    this.launcher = opts.spawnHelper ? new Launcher() : null;
    // On macOS each scan runs `ps` (a process): less often there.
    const scanMs = opts.treeScanMs ?? (process.platform === "linux" ? AGENT_DEFAULTS.treeScanMs : AGENT_DEFAULTS.treeScanPsMs);
    this.scanner = new TreeScanner(scanMs, opts.logger);
    this.ctx = {
      log: opts.logger,
      records: this.records,
      stopNotes: this.stopNotes,
      instanceId: randomUUID(),
      settings: opts,
      scanner: this.scanner,
      onState: (status) => this.emit({ type: "event", kind: "state", at: new Date().toISOString(), status }),
      onLog: (id, lines) => {
        const at = new Date().toISOString();
        for (const line of lines) this.emit({ type: "event", kind: "log", at, id, line, seq: ++this.logSeq });
      },
    };
  }

  // ---- events ----------------------------------------------------------

  onEvent(listener: (e: AgentEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: AgentEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.warn("event listener threw", { error: err });
      }
    }
  }

  /**
   * Creates the state folder's `logs/` and `servers/` (an agent does this once, at start, not on every
   * server's start), and moves host stops an earlier version kept in one file to per-server files.
   */
  async prepareStateDir(): Promise<void> {
    await Promise.all([mkdir(this.logsDir(), { recursive: true, mode: 0o700 }), mkdir(this.records.dir, { recursive: true, mode: 0o700 })]);
    await this.hostStops.migrateLegacyFile().catch((err: unknown) => this.log.warn("could not move the host stops to per-server files", { error: err }));
  }

  private logsDir(): string {
    return path.join(this.opts.stateDir, "logs");
  }

  logPathFor(id: string): string {
    return path.join(this.logsDir(), `${id}.log`);
  }

  // ---- start -------------------------------------------------------------

  /** Starts a server and resolves once it is ready (its status); throws AgentError (FAILED, CONFLICT, …) saying why not. */
  start(spec: ServerSpec): Promise<ServerStatus> {
    return this.queue.run(spec.id, () => this.startNow(spec));
  }

  private async startNow(spec: ServerSpec): Promise<ServerStatus> {
    if (this.closed) throw new AgentError({ code: "UNAVAILABLE", message: "the agent is shutting down" });
    const existing = this.servers.get(spec.id);
    const hash = specHash(spec);
    if (existing?.running) {
      if (existing.specHash === hash) return existing.status();
      throw new AgentError({
        code: "CONFLICT",
        message: `server ${spec.id} is already running (pid ${existing.pid}, port ${existing.spec.port}) with a different spec; stop it first`,
        data: existing.status(),
      });
    }
    if (existing?.heldPort) {
      // Its last stop left a process on the port: refused, with that stop's words, until the port is free.
      const holder = await portHolder(existing.heldPort.port, existing.spec.bindAddress);
      if (holder) throw new AgentError({ code: "CONFLICT", message: `cannot start ${spec.id}: its last stop was incomplete: ${describeHeldPort(holder)}; end that process first`, data: holder });
    }
    const logPath = this.logPathFor(spec.id);
    const managedHolder = (port: number) => {
      for (const o of this.servers.values()) if (o.id !== spec.id && o.spec.port === port && o.running) return { id: o.id, pid: o.pid };
      return null;
    };
    const prep = await this.batch.prepare(() => prepareSpawn(spec, { ...this.opts, logPath, managedHolder }));
    await this.batch.turn();
    if (this.closed) {
      closeSync(prep.log.fd);
      throw new AgentError({ code: "UNAVAILABLE", message: "the agent is shutting down" });
    }
    const server = new ManagedServer(spec, hash, logPath, this.ctx);
    this.servers.set(spec.id, server);
    await server.spawn(prep, this.launcher);
    await this.batch.settled();
    try {
      // Started again: a stop on the host is no longer the last word (whichever agent recorded it), and a
      // stop note names a process that is gone.
      this.hostStops.clear(spec.id);
      this.stopNotes.clear(spec.id);
    } catch (err) {
      this.log.warn("could not clear a host stop", { id: spec.id, error: err });
    }
    return server.begin(prep);
  }

  // ---- stop --------------------------------------------------------------

  /**
   * Stops a server: every process it started ends and its port is free
   * (`stopped`, with `cause`), or the status says what still holds the port
   * (`failed`, "stop incomplete: …"). A server still loading gives up its
   * readiness wait at once, so the stop queued behind its start runs now.
   */
  stop(id: string, graceMs?: number, cause: StopCause = "requested"): Promise<ServerStatus> {
    this.servers.get(id)?.requestStop();
    return this.queue.run(id, async () => {
      const s = this.servers.get(id);
      if (!s) return stoppedStatus(id, "not managed by this agent");
      return s.stop(graceMs ?? s.spec.stopGraceMs, cause);
    });
  }

  /**
   * The ids of the managed servers whose process runs or is loading (an alive state) right now: what a stop
   * of them all would end. Those already stopped, exited or failed are not in it; the agent's `shutdown`
   * names only these as stopped.
   */
  runningIds(): Set<string> {
    return new Set([...this.servers].filter(([, s]) => isAlive(s.status().state)).map(([id]) => id));
  }

  /** Stops every managed server; one status each, those already stopped too (runningIds tells them apart). */
  async stopAll(graceMs?: number, cause: StopCause = "requested"): Promise<ServerStatus[]> {
    const ids = [...this.servers.keys()];
    return Promise.all(ids.map((id) => this.stop(id, graceMs, cause)));
  }

  /**
   * Stops every managed server as a stop made on the host (`by`: e.g.
   * stop-metal-servers; cause `host-stop`), remembered until each is started
   * again: an app that connects later hears it in `status` and leaves them
   * stopped. The marks are written before the stop: a start made elsewhere
   * while it runs clears its mark and wins, where a mark written afterwards
   * would wrongly outlive that start. Servers that did not stop lose their
   * mark again.
   */
  async stopAllOnHost(by: string, graceMs?: number): Promise<ServerStatus[]> {
    await this.hostStops.mark([...this.servers.keys()], by);
    const results = await this.stopAll(graceMs, "host-stop");
    for (const s of results) if (s.state !== "stopped") this.hostStops.clear(s.id);
    return results;
  }

  // ---- queries -----------------------------------------------------------

  /** Managed servers, and the unmanaged ones stopped on the host since they last ran (marks read afresh: the CLI may have made one since). */
  async status(ids?: string[]): Promise<ServerStatus[]> {
    const hostStopped = await this.hostStops.read();
    const unmanaged = (id: string): ServerStatus => {
      const stop = hostStopped.get(id);
      if (!stop) return stoppedStatus(id, "not managed by this agent");
      return { ...stoppedStatus(id, `stopped on the host by ${stop.by} at ${stop.at}`), hostStoppedAt: stop.at, cause: "host-stop" };
    };
    if (ids) return ids.map((id) => this.servers.get(id)?.status() ?? unmanaged(id));
    const all = [...this.servers.values()].map((s) => s.status());
    for (const id of hostStopped.keys()) if (!this.servers.has(id)) all.push(unmanaged(id));
    return all.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * A log's last lines, up to the last line sent as an event (and that
   * event's seq): a client that merges the two has every line once. With
   * `grep`: the last `lines` of the lines (rotated copy and current file)
   * that contain that text, case ignored, with how many matched in all
   * (log-search.ts searchLog), cut at the same seq.
   */
  async logs(id: string, lines: number, grep?: string): Promise<{ id: string; lines: string[]; logPath: string | null; seq: number; matches?: number; searchedBytes?: number; searchedAll?: boolean }> {
    const s = this.servers.get(id);
    const logPath = s?.logPath ?? this.logPathFor(id);
    const exists = await stat(logPath).then(() => true, () => false);
    if (!exists) throw new AgentError({ code: "NOT_FOUND", message: `no log for server ${id} (${logPath} does not exist)` });
    // Catch the follower up first, so the tail is the file as of now (the new lines go out as events just before the reply).
    await s?.follower?.poke().catch(() => undefined);
    // The cut and the seq are taken together: the events up to that seq are the lines up to that offset.
    let seq = this.logSeq;
    const end = () => {
      seq = this.logSeq;
      const f = s?.follower;
      return f ? { offset: f.emittedOffset, rotatedOffset: f.emittedRotatedOffset } : null;
    };
    const cut = { end, rotations: () => s?.follower?.rotations ?? 0 };
    if (grep !== undefined) {
      const found = await searchLog(logPath, grep, lines, cut);
      return { id, logPath, seq, ...found };
    }
    const tail = await readLogTail(logPath, lines, cut);
    return { id, lines: tail, logPath, seq };
  }

  /**
   * Appends the app's note `text` to server `id`'s log as one line (run-header.ts appNote), in the server's
   * turn (after the start or stop before it, before the one after it), and sends it live: by the run's log
   * follower while a run is watched, else here, after the last run's last lines. Throws AgentError NOT_FOUND
   * when the server has no log file (it never ran here); the file system's error when the append fails.
   */
  logNote(id: string, text: string): Promise<{ id: string; logPath: string; line: string }> {
    return this.queue.run(id, async () => {
      const s = this.servers.get(id);
      const logPath = s?.logPath ?? this.logPathFor(id);
      if (!(await stat(logPath).then(() => true, () => false))) throw new AgentError({ code: "NOT_FOUND", message: `no log for server ${id} (${logPath} does not exist)` });
      const line = appNote(id, new Date(), text);
      if (s) await s.appendNote(line);
      else {
        // In one step with the line's event: a tail read between the two would hold it and then get it live too.
        appendFileSync(logPath, `${line}\n`);
        this.ctx.onLog(id, [line]);
      }
      return { id, logPath, line };
    });
  }

  /**
   * Moves server `from`'s log files to server `to`'s names (log-rename.ts), in the turns of both ids (taken
   * in name order, so two renames crossing each other never wait on each other): no start of either id runs
   * meanwhile. Resolves with the new paths (none when `from` had no log). Throws AgentError: BAD_REQUEST when
   * the ids are the same; CONFLICT when either server is running (its process writes to the file and the
   * supervisor rotates it by name) or when `to` already has a log (nothing is overwritten); nothing changed.
   */
  async renameLogs(from: string, to: string): Promise<{ from: string; to: string; moved: string[] }> {
    if (from === to) throw new AgentError({ code: "BAD_REQUEST", message: `from and to are both ${from}`, issues: [{ path: "to", message: "must differ from from" }] });
    const [first, second] = [from, to].sort() as [string, string];
    return this.queue.run(first, () =>
      this.queue.run(second, async () => {
        for (const id of [from, to]) {
          const s = this.servers.get(id);
          if (s?.running) throw new AgentError({ code: "CONFLICT", message: `server ${id} is running (pid ${s.pid}); stop it before moving its log` });
        }
        try {
          const { moved } = await renameLogFiles(this.logPathFor(from), this.logPathFor(to));
          if (moved.length > 0) this.log.info("log moved to a new server id", { from, to, moved });
          return { from, to, moved };
        } catch (err) {
          if (err instanceof LogNameTaken) throw new AgentError({ code: "CONFLICT", message: `server ${to} already has a log (${err.path}); the log of ${from} stays at ${this.logPathFor(from)}` });
          throw err;
        }
      }),
    );
  }

  managedIds(): string[] {
    return [...this.servers.values()].filter((s) => s.running).map((s) => s.id);
  }

  // ---- adoption ----------------------------------------------------------

  /** Takes over the servers a previous agent process left running (see adoption.ts). */
  adopt(): Promise<AdoptionResult> {
    return adoptRecords({
      records: this.records,
      log: this.log,
      inTurn: (id, fn) => this.queue.run(id, fn),
      isRunning: (id) => this.servers.get(id)?.running ?? false,
      take: async (rec) => {
        const server = new ManagedServer(rec.spec, rec.specHash, rec.logPath, this.ctx);
        this.servers.set(rec.id, server);
        await server.adopt(rec);
      },
    });
  }

  /** Stops watching (timers, file watchers). Servers keep running; a later agent re-adopts them. */
  close(): void {
    this.closed = true;
    for (const s of this.servers.values()) s.close();
    this.scanner.close();
    this.launcher?.close();
    this.listeners.clear();
  }
}
