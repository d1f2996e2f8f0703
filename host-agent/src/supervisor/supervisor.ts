/**
 * The supervisor: starts, watches, stops and re-adopts llama-server
 * processes. One instance per agent process. Operations on one server id are
 * serialized (so two concurrent starts of one id give one process);
 * operations on different ids run in parallel.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, watch, type FSWatcher } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AgentError, ALIVE_STATES, type AgentEvent, type ServerSpec, type ServerState, type ServerStatus } from "../protocol.ts";
import { buildLaunch, type Launch } from "./argv.ts";
import { findLlamaServer, inspectLlamaServer, type LlamaServerBinary } from "./binary.ts";
import { describeHealth, isReadyHint, probeHealth, probeHost, type HealthResult } from "./health.ts";
import { enforceLogCap, LogFollower, openLogForChild, readLogTail } from "./log-file.ts";
import type { Logger } from "./logger.ts";
import { describeHolder, portHolder } from "./port.ts";
import { Launcher } from "./launcher.ts";
import { isSameLiveProcess, pidExists, processInfo } from "./process-table.ts";
import { HostStops } from "./host-stops.ts";
import { RecordStore, type ServerRecord } from "./records.ts";
import { resolveModelPath, specHash } from "./spec-check.ts";
import { terminateGroup, type TerminateResult } from "./terminate.ts";

export interface SupervisorOptions {
  stateDir: string;
  modelRoots: string[];
  llamaServerBin: string | null;
  logMaxBytes: number;
  healthIntervalMs: number;
  /** Per-probe timeout of the periodic health check (default: min(2000, interval)). */
  healthTimeoutMs?: number;
  /** How often an adopted (not our child) process is checked for exit. */
  exitPollMs?: number;
  /**
   * Every how many of those polls the process's identity (start time) is
   * checked; the others only ask the kernel whether the pid exists (signal 0).
   * Default 1 on Linux (/proc is cheap), 40 elsewhere (~2 s: on macOS an
   * identity check runs `ps`, a process each time).
   */
  exitPollIdentityEvery?: number;
  logger: Logger;
  /** Lines of log attached to a failure. */
  logTailLines?: number;
  /**
   * Spawn servers from a small helper process (launcher.ts) instead of this
   * one. For agents living inside a big process (the control plane's local
   * link), where each fork() would block the event loop far longer.
   */
  spawnHelper?: boolean;
}

interface Exit {
  code: number | null;
  signal: string | null;
}

interface Managed {
  id: string;
  spec: ServerSpec;
  specHash: string;
  state: ServerState;
  reason: string | null;
  pid: number | null;
  pgid: number | null;
  startToken: string | null;
  startedAt: string | null;
  readyAt: string | null;
  exitCode: number | null;
  signal: string | null;
  logPath: string;
  logTail: string[];
  record: ServerRecord | null;
  child: ChildProcess | null;
  /** Spawned by the helper: its exit is reported through it. */
  launched: boolean;
  /** Resolves once the process has ended (child exit, or the adoption poll saw it gone). */
  exited: Promise<Exit>;
  resolveExit: (e: Exit) => void;
  hasExited: boolean;
  /** Set while a stop is in progress, so the exit is not reported as a crash. */
  stopping: boolean;
  /** Wakes the readiness loop early: a log line says the server serves (see isReadyHint), or it exited. */
  nudge: () => void;
  /** A log line said the server serves since the last readiness probe began (kept for a loop not yet waiting). */
  hint: boolean;
  timers: Set<NodeJS.Timeout>;
  watcher: FSWatcher | null;
  follower: LogFollower | null;
  healthBusy: boolean;
  /** Record writes and removal, in order: a late write must never resurrect a removed record. */
  recordIo: Promise<void>;
  /** Record writes and removals not yet done. */
  recordPending: number;
}

/**
 * Shortest gap between the starts of two readiness probes woken by hints
 * (and the re-probe after one): no more often than a plain script polling
 * every 5 ms. Counted from the probe's start, so the ~2 ms a probe takes on
 * a loading server does not stretch the gap.
 */
const HINT_GAP_MS = 5;
/** How long new log lines wait to be read out as a batch of log events. */
const LOG_FOLLOW_MS = 100;
/** How long after "ready" the record gets its readyAt (see awaitReady). */
const READY_RECORD_DELAY_MS = 1000;
/** How long past its grace a stop request in a record still explains an exit (see stoppedElsewhere). */
const STOP_REQUEST_SLACK_MS = 30_000;
/** How long a spawned server's bookkeeping waits for other starts to spawn (see `spawnsSettled`). */
const SPAWN_SETTLE_MS = 15;

const ALIVE = ALIVE_STATES;

function describeExit(e: Exit): string {
  if (e.signal) return `killed by ${e.signal}`;
  if (e.code !== null) return `exited with code ${e.code}`;
  return "exited (exit status unknown: not a child of this agent)";
}

export class Supervisor {
  private readonly servers = new Map<string, Managed>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly listeners = new Set<(e: AgentEvent) => void>();
  private readonly records: RecordStore;
  private readonly hostStops: HostStops;
  private readonly log: Logger;
  private closed = false;

  private readonly launcher: Launcher | null;
  private spawnWaiters: (() => void)[] = [];
  /** Starts between their entry and their spawn turn (see `asPreparation`). */
  private preparing = 0;
  private settleWaiters: (() => void)[] = [];
  private settleQueued = false;
  private settleDeadline: NodeJS.Timeout | null = null;
  /** Names this agent in the records' stop requests. */
  private readonly instanceId = randomUUID();
  /** The last log event's seq. Microseconds of the clock at the start, so a later agent's lines sort after this one's. */
  private logSeq = Date.now() * 1000;

  constructor(private readonly opts: SupervisorOptions) {
    this.records = new RecordStore(opts.stateDir);
    this.hostStops = new HostStops(opts.stateDir);
    this.log = opts.logger;
    this.launcher = opts.spawnHelper ? new Launcher() : null;
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

  private setState(m: Managed, state: ServerState, reason: string | null): void {
    m.state = state;
    m.reason = reason;
    this.log.info("server state", { id: m.id, state, reason, pid: m.pid, port: m.spec.port });
    this.emit({ type: "event", kind: "state", at: new Date().toISOString(), status: this.statusOf(m) });
  }

  // ---- helpers -----------------------------------------------------------

  private withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return run;
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

  private statusOf(m: Managed): ServerStatus {
    return {
      id: m.id,
      state: m.state,
      pid: m.pid,
      port: m.spec.port,
      startedAt: m.startedAt,
      readyAt: m.readyAt,
      exitCode: m.exitCode,
      signal: m.signal,
      reason: m.reason,
      logPath: m.logPath,
      specHash: m.specHash,
      logTail: m.logTail,
    };
  }

  private stoppedStatus(id: string, reason: string | null = null): ServerStatus {
    return { id, state: "stopped", pid: null, port: null, startedAt: null, readyAt: null, exitCode: null, signal: null, reason, logPath: null, specHash: null, logTail: [] };
  }

  /**
   * A start's preparation (checks, log). While any start is preparing or
   * waiting for its spawn, the starts already spawned hold back their
   * bookkeeping (see `spawnsSettled`).
   */
  private async asPreparation<T>(work: () => Promise<T>): Promise<T> {
    this.preparing += 1;
    try {
      return await work();
    } finally {
      this.preparing -= 1;
      this.settleSpawns();
    }
  }

  /**
   * Resolves at the end of this turn of the event loop (setImmediate),
   * together with every other start that asks in the same turn: their spawns
   * then run back to back.
   */
  private spawnTurn(): Promise<void> {
    return new Promise((resolve) => {
      this.spawnWaiters.push(resolve);
      if (this.spawnWaiters.length > 1) return;
      setImmediate(() => {
        const waiters = this.spawnWaiters;
        this.spawnWaiters = [];
        for (const w of waiters) w();
        this.settleSpawns();
      });
    });
  }

  /**
   * Resolves once no start is preparing or waiting to spawn (or after
   * SPAWN_SETTLE_MS): the work after a spawn (its /proc entry, record, log
   * watch, probes) waits for it. fork() blocks the loop for milliseconds, and
   * work between spawns delays the servers started later; starts asked for
   * together (a start-all) so spawn back to back, each as soon as its checks
   * are done.
   */
  private spawnsSettled(): Promise<void> {
    return new Promise((resolve) => {
      this.settleWaiters.push(resolve);
      this.settleDeadline ??= setTimeout(() => this.releaseSettled(), SPAWN_SETTLE_MS);
      this.settleSpawns();
    });
  }

  private settleSpawns(): void {
    if (this.settleWaiters.length === 0 || this.preparing > 0 || this.spawnWaiters.length > 0 || this.settleQueued) return;
    this.settleQueued = true;
    // setImmediate: a start whose preparation just ended reaches its spawn turn first.
    setImmediate(() => {
      this.settleQueued = false;
      if (this.preparing === 0 && this.spawnWaiters.length === 0) this.releaseSettled();
    });
  }

  private releaseSettled(): void {
    if (this.settleDeadline) clearTimeout(this.settleDeadline);
    this.settleDeadline = null;
    const waiters = this.settleWaiters;
    this.settleWaiters = [];
    for (const w of waiters) w();
  }

  private newManaged(spec: ServerSpec, hash: string): Managed {
    let resolveExit: (e: Exit) => void = () => {};
    const exited = new Promise<Exit>((r) => (resolveExit = r));
    return {
      id: spec.id, spec, specHash: hash, state: "stopped", reason: null, pid: null, pgid: null, startToken: null,
      startedAt: null, readyAt: null, exitCode: null, signal: null, logPath: this.logPathFor(spec.id), logTail: [], record: null,
      child: null, launched: false, exited, resolveExit, hasExited: false, stopping: false, nudge: () => {}, hint: false, timers: new Set(), watcher: null,
      follower: null, healthBusy: false, recordIo: Promise.resolve(), recordPending: 0,
    };
  }

  private every(m: Managed, ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref(); // watchers never keep a one-shot CLI alive
    m.timers.add(t);
  }

  private stopWatching(m: Managed): void {
    for (const t of m.timers) clearInterval(t);
    m.timers.clear();
    m.watcher?.close();
    m.watcher = null;
    // The lines written since the last read still go out as events. Until
    // they have, `logs` cuts its tail where this follower got to.
    const follower = m.follower;
    void follower?.finish().finally(() => {
      if (m.follower === follower) m.follower = null;
    });
  }

  private persist(m: Managed, rec: ServerRecord): Promise<void> {
    m.record = rec;
    m.recordPending += 1;
    m.recordIo = m.recordIo
      .then(() => this.records.write(rec))
      .catch((err) => this.log.warn("record write failed", { id: m.id, error: err }))
      .finally(() => void (m.recordPending -= 1));
    return m.recordIo;
  }

  private forget(m: Managed): Promise<void> {
    m.recordPending += 1;
    m.recordIo = m.recordIo
      .then(() => this.records.remove(m.id))
      .catch((err) => this.log.warn("record removal failed", { id: m.id, error: err }))
      .finally(() => void (m.recordPending -= 1));
    return m.recordIo;
  }

  /**
   * Why a server that ended while this agent was not stopping it was stopped
   * by someone else on purpose (another agent on the same state folder, e.g.
   * `host-agent stop-metal-servers`): its record carries that agent's stop
   * request, or is already gone. Null: nobody asked; it crashed.
   */
  private async stoppedElsewhere(m: Managed): Promise<string | null> {
    if (!m.record) return null;
    await m.recordIo;
    const rec = await this.records.read(m.id);
    if (rec === "missing") return "stopped on the host outside this agent (its record was removed)";
    const req = rec?.stopRequest;
    if (rec && rec.pid === m.pid && req && req.agent !== this.instanceId) {
      // A stop takes the grace and a little more. An older request is from an agent that died
      // halfway through its stop: the server lived on, and this exit is its own.
      const age = Date.now() - Date.parse(req.at);
      if (age <= m.spec.stopGraceMs + STOP_REQUEST_SLACK_MS) return `stopped on the host by another agent (pid ${req.by}, e.g. stop-metal-servers)`;
    }
    return null;
  }

  private async tail(m: Managed): Promise<string[]> {
    return readLogTail(m.logPath, this.opts.logTailLines ?? 20).catch(() => []);
  }

  /** Follows the log (events + size cap); while the server loads, a line saying it serves wakes readiness. */
  private watchLog(m: Managed, fromOffset: number): void {
    const follower = new LogFollower(m.logPath, fromOffset, (lines) => {
      const at = new Date().toISOString();
      for (const line of lines) this.emit({ type: "event", kind: "log", at, id: m.id, line, seq: ++this.logSeq });
      if (m.state === "starting" && lines.some(isReadyHint)) {
        m.hint = true;
        m.nudge();
      }
    });
    m.follower = follower;
    // While the server loads its lines are read as they come (one line says it is ready); after
    // that, reading them out for log events is batched (LOG_FOLLOW_MS: quick for a person
    // watching, and few reads while other servers of a start-all still load).
    let followScheduled = false;
    const follow = () => {
      if (m.state === "starting") {
        void follower.poke().catch(() => undefined);
        return;
      }
      if (followScheduled) return;
      followScheduled = true;
      setTimeout(() => {
        followScheduled = false;
        void follower.poke().catch(() => undefined);
      }, LOG_FOLLOW_MS).unref();
    };
    try {
      m.watcher = watch(m.logPath, { persistent: false }, follow);
      m.watcher.on("error", () => undefined);
    } catch {
      m.watcher = null; // the timer below still follows the file
    }
    follow(); // what was written before the watch began
    this.every(m, 1000, () => {
      follow();
      void enforceLogCap(m.logPath, this.opts.logMaxBytes).catch((err) => this.log.warn("log rotation failed", { id: m.id, error: err }));
    });
  }

  /** Periodic /health: a ready server that stops answering becomes unhealthy, and ready again when it recovers. */
  private watchHealth(m: Managed): void {
    const timeout = this.opts.healthTimeoutMs ?? Math.min(2000, this.opts.healthIntervalMs);
    this.every(m, this.opts.healthIntervalMs, () => {
      if (m.healthBusy || (m.state !== "ready" && m.state !== "unhealthy")) return;
      m.healthBusy = true;
      void probeHealth(probeHost(m.spec.bindAddress), m.spec.port, timeout)
        .then((r) => {
          if (m.state === "ready" && r.kind !== "ok") this.setState(m, "unhealthy", describeHealth(r));
          else if (m.state === "unhealthy" && r.kind === "ok") this.setState(m, "ready", "health check passed again");
        })
        .finally(() => (m.healthBusy = false));
    });
  }

  /**
   * Exit watching for a process that is not our child: poll whether its pid
   * still exists (a syscall), and now and then that it is still the same
   * process (its start time: pid reuse). On Linux both are cheap and every
   * poll checks identity; on macOS an identity check runs `ps`, so 16
   * adopted servers polled at 50 ms would start 320 processes a second.
   */
  private watchForeignExit(m: Managed): void {
    const pid = m.pid;
    const token = m.startToken;
    if (pid === null || token === null) return;
    const identityEvery = Math.max(1, this.opts.exitPollIdentityEvery ?? (process.platform === "linux" ? 1 : 40));
    let polls = 0;
    let busy = false;
    this.every(m, this.opts.exitPollMs ?? 50, () => {
      if (busy || m.hasExited) return;
      polls += 1;
      if (polls % identityEvery !== 0) {
        if (!pidExists(pid)) this.onExit(m, { code: null, signal: null });
        return;
      }
      busy = true;
      void isSameLiveProcess(pid, token)
        .then((alive) => {
          if (!alive) this.onExit(m, { code: null, signal: null });
        })
        .finally(() => (busy = false));
    });
  }

  private onExit(m: Managed, e: Exit): void {
    if (m.hasExited) return;
    m.hasExited = true;
    m.exitCode = e.code;
    m.signal = e.signal;
    m.resolveExit(e);
    // Starting and stopping servers are handled by start()/stop(), which wait on `exited`.
    if (m.stopping || m.state === "starting") return;
    if (m.state !== "ready" && m.state !== "unhealthy") return;
    void (async () => {
      const elsewhere = await this.stoppedElsewhere(m);
      m.logTail = await this.tail(m);
      this.stopWatching(m);
      if (elsewhere) {
        // The agent that stopped it removes the record and reaps the group.
        this.setState(m, "stopped", elsewhere);
        return;
      }
      this.setState(m, "exited", describeExit(e));
      await this.forget(m);
      // A crashed leader may leave forked children behind: reap them so nothing of the group lingers.
      if (m.pid !== null && m.pgid !== null && m.startToken !== null) {
        const r = await terminateGroup({ pid: m.pid, pgid: m.pgid, startToken: m.startToken, port: m.spec.port, bindAddress: m.spec.bindAddress }, 1000).catch(() => null);
        if (r && r.ended !== "gone" && r.ended !== "foreign") this.log.warn("reaped leftovers of a crashed server's group", { id: m.id, ended: r.ended });
      }
    })();
  }

  // ---- start -------------------------------------------------------------

  start(spec: ServerSpec): Promise<ServerStatus> {
    return this.withLock(spec.id, () => this.startLocked(spec));
  }

  private async startLocked(spec: ServerSpec): Promise<ServerStatus> {
    if (this.closed) throw new AgentError({ code: "UNAVAILABLE", message: "the agent is shutting down" });
    const existing = this.servers.get(spec.id);
    const hash = specHash(spec);
    if (existing && ALIVE.has(existing.state) && !existing.hasExited) {
      if (existing.specHash === hash) return this.statusOf(existing);
      throw new AgentError({
        code: "CONFLICT",
        message: `server ${spec.id} is already running (pid ${existing.pid}, port ${existing.spec.port}) with a different spec; stop it first`,
        data: this.statusOf(existing),
      });
    }

    const { binary, launch, log } = await this.asPreparation(() => this.prepareSpawn(spec));
    await this.spawnTurn();
    if (this.closed) {
      closeSync(log.fd);
      throw new AgentError({ code: "UNAVAILABLE", message: "the agent is shutting down" });
    }
    const m = this.newManaged(spec, hash);
    this.servers.set(spec.id, m);
    const logOffset = log.offset;
    // Wall-clock spawn time: /proc's start time is exact as an identity but its
    // boot-time base has 1 s resolution, too coarse for "ready in 0.35 s".
    const spawnedAt = new Date().toISOString();
    let pid: number;
    if (this.launcher) {
      // The helper opens the log itself, by path.
      closeSync(log.fd);
      try {
        const launched = await this.launcher.launch({ file: binary.path, args: launch.args, env: { ...(process.env as Record<string, string>), ...launch.env }, logPath: m.logPath });
        pid = launched.pid;
        m.launched = true;
        void launched.exited.then((e) => {
          if (e.lost) this.watchForeignExit(m); // the helper died: watch the pid like an adopted server
          else this.onExit(m, e);
        });
      } catch (err) {
        m.hasExited = true;
        m.logTail = [];
        this.setState(m, "failed", `could not spawn ${binary.path}: ${(err as Error).message}`);
        throw new AgentError({ code: "FAILED", message: `cannot start ${spec.id}: could not spawn ${binary.path}: ${(err as Error).message}`, data: this.statusOf(m) }, { cause: err });
      }
    } else {
      let child: ChildProcess;
      try {
        // detached: its own process group, so stop can signal the server and anything it forks, and a
        // Ctrl-C aimed at the agent's terminal does not hit the servers.
        child = spawn(binary.path, launch.args, { detached: true, stdio: ["ignore", log.fd, log.fd], env: { ...process.env, ...launch.env } });
      } finally {
        closeSync(log.fd); // the child has its own copy
      }
      m.child = child;
      child.unref();
      const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
      child.once("exit", (code, signal) => this.onExit(m, { code, signal }));

      if (child.pid === undefined) {
        const err = await spawnError;
        m.hasExited = true;
        m.logTail = [];
        this.setState(m, "failed", `could not spawn ${binary.path}: ${err.message}`);
        throw new AgentError({ code: "FAILED", message: `cannot start ${spec.id}: could not spawn ${binary.path}: ${err.message}`, data: this.statusOf(m) }, { cause: err });
      }
      pid = child.pid;
    }
    m.pid = pid;
    m.pgid = pid; // detached: the child leads a new group whose id is its pid
    await this.spawnsSettled();
    try {
      // Started again: a stop on the host is no longer the last word (whichever agent recorded it).
      this.hostStops.clear(spec.id);
    } catch (err) {
      this.log.warn("could not clear a host stop", { id: spec.id, error: err });
    }
    const info = await processInfo(pid);
    if (info && !info.zombie) {
      m.startToken = info.startToken;
      m.startedAt = spawnedAt;
      // Not awaited here: readiness polling starts meanwhile; awaitReady waits for it before reporting ready.
      void this.persist(m, {
        version: 1, id: spec.id, pid: pid, pgid: pid, startToken: info.startToken, startedAt: spawnedAt, port: spec.port,
        bindAddress: spec.bindAddress, binary: binary.path, argv: launch.args, logPath: m.logPath, specHash: m.specHash, spec, readyAt: null,
        agentPid: process.pid,
      });
    } else {
      m.startedAt = spawnedAt;
    }
    this.setState(m, "starting", `spawned pid ${pid}`);
    this.watchLog(m, logOffset);
    // Just spawned, it does not listen yet: the first probe waits for the first timer (10 ms) or a hint.
    return this.awaitReady(m, { probeAtOnce: false });
  }

  /**
   * Everything a spawn needs, checked and ready: the model, port and binary
   * checks, the argv, and the log with its header. Nothing is spawned here.
   */
  private async prepareSpawn(spec: ServerSpec): Promise<{ binary: LlamaServerBinary; launch: Launch; log: { fd: number; offset: number } }> {
    // The model, port and binary checks are independent: one round of I/O for all three (start latency;
    // with many starts at once, every start's checks are done before the first spawn blocks the loop).
    // Errors are still reported in a fixed order: model, port, binary. The binary is only found here;
    // it is run (--version/--help, once per file) only for a spec that passed the other checks.
    const [modelCheck, holderCheck, binaryCheck] = await Promise.allSettled([
      resolveModelPath(spec.modelPath, this.opts.modelRoots),
      portHolder(spec.port, spec.bindAddress),
      findLlamaServer(this.opts.llamaServerBin),
    ]);
    if (modelCheck.status === "rejected") throw modelCheck.reason;
    const modelPath = modelCheck.value;
    for (const other of this.servers.values()) {
      if (other.id !== spec.id && other.spec.port === spec.port && ALIVE.has(other.state) && !other.hasExited) {
        throw new AgentError({ code: "CONFLICT", message: `port ${spec.port} is held by managed server ${other.id} (pid ${other.pid})`, data: { port: spec.port, pid: other.pid, id: other.id } });
      }
    }
    if (holderCheck.status === "rejected") throw holderCheck.reason;
    const holder = holderCheck.value;
    if (holder) throw new AgentError({ code: "CONFLICT", message: `cannot start ${spec.id}: ${describeHolder(holder)}`, data: holder });
    let binary: LlamaServerBinary;
    try {
      if (binaryCheck.status === "rejected") throw binaryCheck.reason;
      binary = await inspectLlamaServer(binaryCheck.value.path, binaryCheck.value.stat);
    } catch (cause) {
      throw new AgentError({ code: "FAILED", message: `cannot start ${spec.id}: ${(cause as Error).message}` }, { cause });
    }
    const launch = buildLaunch(spec, modelPath, binary.capabilities);
    // The log is opened and its header written here, while other starts' checks are out, so no file work is left between the spawns.
    const logPath = this.logPathFor(spec.id);
    const header = `=== synapse host-agent: starting ${spec.id} at ${new Date().toISOString()}: ${binary.path} ${launch.args.join(" ")} ===`;
    let log: { fd: number; offset: number };
    try {
      log = openLogForChild(logPath, this.opts.logMaxBytes, header);
    } catch (cause) {
      throw new AgentError({ code: "FAILED", message: `cannot start ${spec.id}: cannot write its log ${logPath}: ${(cause as Error).message}` }, { cause });
    }
    return { binary, launch, log };
  }

  /**
   * Polls /health until ready, exit or deadline: on a timer (10 ms, backing
   * off to 250 ms) and at once when the log says the server serves
   * (isReadyHint). Probes are few: each costs the loading server and this
   * agent a connection, and a start-all's servers share the CPU.
   * `probeAtOnce`: probe before the first wait (an adopted server may be
   * ready already; one just spawned is not).
   */
  private async awaitReady(m: Managed, opts: { probeAtOnce: boolean }): Promise<ServerStatus> {
    const deadline = Date.now() + m.spec.readinessDeadlineMs;
    const host = probeHost(m.spec.bindAddress);
    let delay = 10;
    let last: HealthResult = { kind: "refused" };
    let exit: Exit | null = null;
    let probedAt = -Infinity;
    let probeNow = opts.probeAtOnce;
    /** The last wait was cut short (by a hint; an exit or stop also wakes it, and the loop then ends). */
    let woken = false;
    void m.exited.then((e) => {
      exit = e;
      m.nudge();
    });
    while (Date.now() < deadline) {
      if (exit || m.stopping) break;
      // A hint that came before this loop waited (a server that turned ready while a start-all was
      // still spawning the others) is not lost: it is kept in m.hint.
      if (probeNow || m.hint) {
        m.hint = false;
        probedAt = performance.now();
        last = await probeHealth(host, m.spec.port, Math.max(50, Math.min(1000, deadline - Date.now())));
        if (m.stopping) break;
        if (last.kind === "ok" && !exit) {
          // The record (written at the spawn) must be on disk before anyone hears "ready": a new agent adopts from it.
          if (m.recordPending > 0) await m.recordIo;
          if (m.stopping || exit) break;
          m.readyAt = new Date().toISOString();
          this.setState(m, "ready", `healthy (pid ${m.pid})`);
          // readyAt goes into the record a little later, out of the way of other servers still loading
          // (an agent that adopts a record without it takes the adoption time).
          const readyAt = m.readyAt;
          const t = setTimeout(() => {
            m.timers.delete(t);
            if (m.record && m.state === "ready" && !m.stopping) void this.persist(m, { ...m.record, readyAt });
          }, READY_RECORD_DELAY_MS);
          t.unref();
          m.timers.add(t);
          this.watchHealth(m);
          return this.statusOf(m);
        }
        if (exit) break;
      }
      probeNow = true;
      // After a hint (the one that woke this probe, or one that came while it was out) the server may
      // turn ready any moment: re-probe soon. A wait not cut short grows the backoff.
      const soon = Math.max(0, HINT_GAP_MS - (performance.now() - probedAt));
      const wait = Math.min(woken || m.hint ? soon : delay, Math.max(0, deadline - Date.now()));
      woken = await new Promise<boolean>((resolve) => {
        let t = setTimeout(() => resolve(false), wait);
        m.nudge = () => {
          // At most one probe per HINT_GAP_MS however many hints come.
          clearTimeout(t);
          const since = performance.now() - probedAt;
          if (since >= HINT_GAP_MS) return resolve(true);
          t = setTimeout(() => resolve(true), HINT_GAP_MS - since);
        };
      });
      m.nudge = () => {};
      if (!woken) delay = Math.min(250, Math.ceil(delay * 1.5));
    }

    if (m.stopping) {
      // A stop request took over (a server still loading, started here or adopted): it reports the outcome.
      throw new AgentError({ code: "FAILED", message: `${m.id} was stopped before it became ready` });
    }
    if (exit) {
      m.logTail = await this.tail(m);
      this.stopWatching(m);
      await this.forget(m);
      // Reap anything the server forked before it died.
      await this.reapGroup(m, 0);
      this.setState(m, "failed", `${describeExit(exit)} while loading`);
    } else {
      m.stopping = true;
      this.setState(m, "stopping", `not ready within ${m.spec.readinessDeadlineMs} ms`);
      await this.reapGroup(m, m.spec.stopGraceMs);
      m.logTail = await this.tail(m);
      this.stopWatching(m);
      await this.forget(m);
      m.stopping = false;
      this.setState(m, "failed", `not ready within ${m.spec.readinessDeadlineMs} ms (last: ${describeHealth(last)})`);
    }
    const status = this.statusOf(m);
    throw new AgentError({ code: "FAILED", message: `${m.id} failed to start: ${status.reason}${status.logTail.length ? `; last log lines:\n${status.logTail.join("\n")}` : ""}`, data: status });
  }

  private async reapGroup(m: Managed, graceMs: number): Promise<TerminateResult | null> {
    if (m.pid === null || m.pgid === null) return null;
    if (m.startToken === null) {
      // We never read its start time (it died at once); it was our child, so its group id is ours until empty.
      try {
        process.kill(-m.pgid, "SIGKILL");
      } catch {
        // already gone
      }
      return null;
    }
    return terminateGroup({ pid: m.pid, pgid: m.pgid, startToken: m.startToken, port: m.spec.port, bindAddress: m.spec.bindAddress }, graceMs);
  }

  // ---- stop --------------------------------------------------------------

  stop(id: string, graceMs?: number): Promise<ServerStatus> {
    const m = this.servers.get(id);
    if (m && m.state === "starting" && !m.stopping) {
      // A start holds the server's lock until it is ready, which for a big model takes minutes:
      // tell its readiness wait to give up now, so this stop (queued behind it) runs at once.
      m.stopping = true;
      m.nudge();
    }
    return this.withLock(id, () => this.stopLocked(id, graceMs));
  }

  private async stopLocked(id: string, graceMs?: number): Promise<ServerStatus> {
    const m = this.servers.get(id);
    if (!m) return this.stoppedStatus(id, "not managed by this agent");
    if (!ALIVE.has(m.state)) {
      if (m.state === "stopped") return this.statusOf(m);
      // exited/failed: already gone; report it as stopped now that someone asked.
      this.setState(m, "stopped", m.reason);
      return this.statusOf(m);
    }
    m.stopping = true;
    this.setState(m, "stopping", "stop requested");
    // Said in the record before the signal: another agent watching this server sees a stop, not a crash.
    if (m.record) await this.persist(m, { ...m.record, stopRequest: { by: process.pid, agent: this.instanceId, at: new Date().toISOString() } });
    const r = await this.reapGroup(m, graceMs ?? m.spec.stopGraceMs);
    if ((m.child || m.launched) && !m.hasExited) {
      // Our own child (or the helper's): wait briefly for it to be reaped so exit code and signal are known.
      await Promise.race([m.exited, sleep(1000)]);
    }
    this.stopWatching(m);
    await this.forget(m);
    m.stopping = false;
    m.hasExited = true;
    let reason = "stopped on request";
    if (r?.ended === "kill") reason = `stopped with SIGKILL: still running ${graceMs ?? m.spec.stopGraceMs} ms after SIGTERM`;
    if (r?.ended === "foreign") reason = `pid ${m.pid} now belongs to another process; it was not signalled`;
    if (r && r.survivors.length > 0) reason += `; pids ${r.survivors.join(", ")} survived SIGKILL`;
    if (r && !r.portFree) reason += `; port ${m.spec.port} is still in use`;
    this.setState(m, "stopped", reason);
    return this.statusOf(m);
  }

  async stopAll(graceMs?: number): Promise<ServerStatus[]> {
    const ids = [...this.servers.keys()];
    return Promise.all(ids.map((id) => this.stop(id, graceMs)));
  }

  /**
   * Stops every managed server as a stop made on the host (`by`: e.g.
   * stop-metal-servers), remembered until each is started again: an app that
   * connects later hears it in `status` and leaves them stopped. The marks
   * are written before the stop: a start made elsewhere while it runs clears
   * its mark and wins, where a mark written afterwards would wrongly outlive
   * that start. Servers that did not stop lose their mark again.
   */
  async stopAllOnHost(by: string, graceMs?: number): Promise<ServerStatus[]> {
    await this.hostStops.mark([...this.servers.keys()], by);
    const results = await this.stopAll(graceMs);
    for (const s of results) if (s.state !== "stopped") this.hostStops.clear(s.id);
    return results;
  }

  // ---- queries -----------------------------------------------------------

  /** Managed servers, and the unmanaged ones stopped on the host since they last ran (marks read afresh: the CLI may have made one since). */
  async status(ids?: string[]): Promise<ServerStatus[]> {
    const hostStopped = await this.hostStops.read();
    const unmanaged = (id: string): ServerStatus => {
      const stop = hostStopped.get(id);
      if (!stop) return this.stoppedStatus(id, "not managed by this agent");
      return { ...this.stoppedStatus(id, `stopped on the host by ${stop.by} at ${stop.at}`), hostStoppedAt: stop.at };
    };
    if (ids) return ids.map((id) => {
      const m = this.servers.get(id);
      return m ? this.statusOf(m) : unmanaged(id);
    });
    // Every managed server, and the ones stopped on the host since they last ran.
    const all = [...this.servers.values()].map((m) => this.statusOf(m));
    for (const id of hostStopped.keys()) if (!this.servers.has(id)) all.push(unmanaged(id));
    return all.sort((a, b) => a.id.localeCompare(b.id));
  }

  /**
   * A log's last lines, up to the last line sent as an event (and that
   * event's seq): a client that merges the two has every line once.
   */
  async logs(id: string, lines: number): Promise<{ id: string; lines: string[]; logPath: string | null; seq: number }> {
    const m = this.servers.get(id);
    const logPath = m?.logPath ?? this.logPathFor(id);
    const exists = await stat(logPath).then(() => true, () => false);
    if (!exists) throw new AgentError({ code: "NOT_FOUND", message: `no log for server ${id} (${logPath} does not exist)` });
    // Catch the follower up first, so the tail is the file as of now (the new lines go out as events just before the reply).
    await m?.follower?.poke().catch(() => undefined);
    // The cut and the seq are taken together: the events up to that seq are the lines up to that offset.
    let seq = this.logSeq;
    const end = () => {
      seq = this.logSeq;
      return m?.follower?.emittedOffset ?? null;
    };
    const tail = await readLogTail(logPath, lines, { end });
    return { id, lines: tail, logPath, seq };
  }

  managedIds(): string[] {
    return [...this.servers.values()].filter((m) => ALIVE.has(m.state)).map((m) => m.id);
  }

  // ---- adoption ----------------------------------------------------------

  /**
   * Takes over the servers a previous agent process left running, from their
   * records, without restarting them. A record whose pid is gone or now
   * belongs to another process (different start time) is dropped and that
   * process is left alone.
   */
  async adopt(): Promise<{ adopted: string[]; dropped: { id: string; reason: string }[] }> {
    const { records, problems } = await this.records.list();
    for (const p of problems) this.log.warn("unreadable server record skipped", p);
    const adopted: string[] = [];
    const dropped: { id: string; reason: string }[] = [];
    await Promise.all(
      records.map((rec) =>
        this.withLock(rec.id, async () => {
          if (this.servers.has(rec.id) && ALIVE.has(this.servers.get(rec.id)!.state)) return;
          const info = await processInfo(rec.pid);
          if (!info || info.zombie || info.startToken !== rec.startToken) {
            const reason = !info || info.zombie ? `pid ${rec.pid} is no longer running` : `pid ${rec.pid} now belongs to another process (start time differs); left alone`;
            dropped.push({ id: rec.id, reason });
            this.log.info("dropping stale server record", { id: rec.id, pid: rec.pid, reason });
            if (!info || info.zombie) {
              // The leader died while no agent watched; helpers it forked may live on in its group. terminateGroup
              // only signals members that started after the leader, and never a reused pid.
              const r = await terminateGroup({ pid: rec.pid, pgid: rec.pgid, startToken: rec.startToken, port: rec.port, bindAddress: rec.bindAddress }, 1000, { portDeadlineMs: 0 }).catch(() => null);
              if (r && r.ended !== "gone" && r.ended !== "foreign") this.log.warn("reaped leftovers of a server that died unwatched", { id: rec.id, ended: r.ended });
            }
            await this.records.remove(rec.id);
            return;
          }
          const m = this.newManaged(rec.spec, rec.specHash);
          Object.assign(m, { pid: rec.pid, pgid: rec.pgid, startToken: rec.startToken, startedAt: rec.startedAt, readyAt: rec.readyAt, record: rec, logPath: rec.logPath });
          this.servers.set(rec.id, m);
          const size = await stat(m.logPath).then((s) => s.size, () => 0);
          this.watchLog(m, size);
          this.watchForeignExit(m);
          const h = await probeHealth(probeHost(rec.bindAddress), rec.port, 2000);
          if (h.kind === "ok") {
            m.readyAt ??= new Date().toISOString();
            this.setState(m, "ready", `adopted (pid ${rec.pid})`);
            this.watchHealth(m);
          } else if (h.kind === "loading") {
            this.setState(m, "starting", `adopted while loading (pid ${rec.pid})`);
            void this.awaitReady(m, { probeAtOnce: true }).catch(() => undefined);
          } else {
            this.setState(m, "unhealthy", `adopted (pid ${rec.pid}); ${describeHealth(h)}`);
            this.watchHealth(m);
          }
          adopted.push(rec.id);
        }),
      ),
    );
    return { adopted, dropped };
  }

  /** Stops watching (timers, file watchers). Servers keep running; a later agent re-adopts them. */
  close(): void {
    this.closed = true;
    for (const m of this.servers.values()) {
      this.stopWatching(m);
      m.child?.removeAllListeners("exit");
    }
    this.launcher?.close();
    this.listeners.clear();
  }
}
