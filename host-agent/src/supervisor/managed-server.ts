/**
 * One managed llama-server: the process group it leads (one spawn or one
 * adoption), its record, its log follower, its readiness and health, and
 * the processes it started. Its state changes only through `transition`,
 * checked against the table in transitions.ts; every stopped, exited or
 * failed state carries a typed cause.
 */
import { randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { AGENT_DEFAULTS } from "../env.ts";
import { AgentError, type ServerSpec, type ServerState, type ServerStatus } from "../protocol.ts";
import { errorMessage, LOG_TAIL_MARK } from "../shared/error-text.ts";
import { RUN_FOOTER_PREFIX, RUN_HEADER_PREFIX } from "../shared/run-header.ts";
import { isAlive, type StopCause, STOP_CAUSE_TEXT } from "../shared/server-states.ts";
import { confirmPortFree, describeHeldPort, endServer, type EndResult } from "./end-server.ts";
import { signalOwnedGroup, type TerminateTarget } from "./terminate.ts";
import { describeHealth, isExitingHint, isReadyHint, probeHealth, probeHost } from "./health.ts";
import type { Launcher } from "./launcher.ts";
import { describeForeign, listenerOwnershipSeen, type OwnershipSeen } from "./listener-owner.ts";
import { readLogTail, type LogFollower } from "./log-file.ts";
import { LiveLogGate } from "./live-log-gate.ts";
import { LogWatch } from "./log-watch.ts";
import type { Logger } from "./logger.ts";
import type { PortHolder } from "./port.ts";
import { processInfo, processTable } from "./process-table.ts";
import { Descendants, RUN_MARKER_VAR, type TreeScanner } from "./process-tree.ts";
import { ReadinessWait, type Exit } from "./readiness.ts";
import { RecordKeeper } from "./record-keeper.ts";
import type { RecordStore, ServerRecord } from "./records.ts";
import { endRunInLog, lineBreakBefore } from "./run-footer.ts";
import { serverEnvironment } from "./server-env.ts";
import { watchHealth, watchPidExit } from "./server-watch.ts";
import { spawnServer, type PreparedSpawn } from "./spawn-prep.ts";
import type { StopNote, StopNotes } from "./stop-notes.ts";
import { canTransition, InvalidTransitionError } from "./transitions.ts";

export interface ServerSettings {
  logMaxBytes: number;
  healthIntervalMs: number;
  /** Per-probe timeout of the periodic health check (default: min(AGENT_DEFAULTS.healthTimeoutMaxMs, interval)). */
  healthTimeoutMs?: number;
  /** How often an adopted (not our child) process is checked for exit. */
  exitPollMs?: number;
  /** Every how many exit polls the start time is compared too (default 1 on Linux, 40 elsewhere: `ps` costs a process). */
  exitPollIdentityEvery?: number;
  logTailLines?: number;
  /** Variables every server gets on top of its minimal environment (server-env.ts); for embedders and tests. */
  serverEnv?: Record<string, string>;
}

/** What a server needs from the agent around it. */
export interface ServerContext {
  readonly log: Logger;
  readonly records: RecordStore;
  /** Stop requests that outlive the records (stop-notes.ts). */
  readonly stopNotes: StopNotes;
  /** Names this agent in the records' stop requests. */
  readonly instanceId: string;
  readonly settings: ServerSettings;
  readonly scanner: TreeScanner;
  onState(status: ServerStatus): void;
  onLog(id: string, lines: string[]): void;
}

const TERMINAL = new Set<ServerState>(["stopped", "exited", "failed"]);

/** What says whether another agent asked a server to stop: its record and its stop note, read together. */
interface StopEvidence {
  record: ServerRecord | "missing" | null;
  note: StopNote | null;
}

export function describeExit(e: Exit): string {
  if (e.signal) return `killed by ${e.signal}`;
  if (e.code !== null) return `exited with code ${e.code}`;
  // A process the agent is not the parent of (adopted after a restart of the agent or the app, or its spawn
  // helper died first): only a parent reads an exit status.
  // Said once: the event reads `crashed: ended (exit code unknown: …)`, not "exited (its exit code …)" after "crashed".
  return "ended (exit code unknown: the agent is not its parent process, as after a restart of the agent or the app)";
}

export class ManagedServer {
  readonly id: string;
  state: ServerState = "stopped";
  reason: string | null = null;
  cause: StopCause | null = null;
  pid: number | null = null;
  startToken: string | null = null;
  startedAt: string | null = null;
  readyAt: string | null = null;
  logTail: string[] = [];
  /** Who kept the port after this server ended (an incomplete stop); cleared by a stop that finds it free. */
  heldPort: PortHolder | null = null;
  /** The holder a stop of this server left on its port (its `failed` status says so); null after any other end. */
  private stopLeftHeld: PortHolder | null = null;
  readonly exited: Promise<Exit>;
  private exit: Exit | null = null;
  private resolveExit: (e: Exit) => void = () => {};
  /** The exit status comes from our child (or the helper's), not from polling a pid. */
  private ownChild = false;
  private stopAsked = false;
  private readonly record: RecordKeeper;
  private readonly readiness = new ReadinessWait();
  private readonly markerValue = randomUUID();
  private logWatch: LogWatch | null = null;
  /** Bounds the live log events (the log file keeps every line). */
  private readonly liveLog: LiveLogGate;
  private readonly cancels = new Set<() => void>();
  /** This run logged that it exits though nobody here stopped it (finishOutsideExit); "ended": the second SIGTERM went. */
  private outsideExit: "began" | "ended" | null = null;
  private tree: Descendants | null = null;
  /** The path the server got with --model (what its /props reports). */
  private modelPath: string;
  /** The arguments the process was started with (spawned here or adopted from its record); null before a spawn. */
  private argv: string[] | null = null;

  constructor(
    readonly spec: ServerSpec,
    readonly specHash: string,
    readonly logPath: string,
    private readonly ctx: ServerContext,
  ) {
    this.id = spec.id;
    this.modelPath = spec.modelPath;
    this.record = new RecordKeeper(spec.id, ctx.records, ctx.log);
    this.exited = new Promise<Exit>((r) => (this.resolveExit = r));
    // Set here, not as a field: the note names logPath, a constructor parameter.
    this.liveLog = new LiveLogGate((lines) => this.ctx.onLog(this.id, lines), { file: logPath });
  }

  /** The follower of the current log, while there is one (see Supervisor.logs). */
  get follower(): LogFollower | null {
    return this.logWatch?.follower ?? null;
  }

  /** True when a process of this server may still run. */
  get running(): boolean {
    return isAlive(this.state) && this.exit === null;
  }

  status(): ServerStatus {
    return {
      id: this.id, state: this.state, pid: this.pid, port: this.spec.port, startedAt: this.startedAt, readyAt: this.readyAt,
      exitCode: this.exit?.code ?? null, signal: this.exit?.signal ?? null, reason: this.reason, logPath: this.logPath,
      specHash: this.specHash, logTail: this.logTail, cause: this.cause, stopIncomplete: this.stopIncomplete(),
      ...(this.running && this.argv !== null ? { argv: this.argv } : {}),
    };
  }

  /** The status's `stopIncomplete`: the port and its holder while `failed` by a stop that left the port held, else null. */
  private stopIncomplete(): ServerStatus["stopIncomplete"] {
    const h = this.state === "failed" ? this.stopLeftHeld : null;
    return h ? { port: h.port, holderPid: h.pid, holderCommand: h.command } : null;
  }

  private transition(to: ServerState, reason: string | null, cause: StopCause | null = null): void {
    if (!canTransition(this.state, to)) {
      const bug = new InvalidTransitionError(this.id, this.state, to);
      if (process.env.VITEST) throw bug;
      this.ctx.log.error(bug.message, { id: this.id, reason });
    }
    this.state = to;
    this.reason = reason;
    this.cause = TERMINAL.has(to) ? cause : null;
    this.ctx.log.info("server state", { id: this.id, state: to, reason, cause: this.cause, pid: this.pid, port: this.spec.port });
    this.ctx.onState(this.status());
  }

  // ---- start -------------------------------------------------------------

  /** Spawns the prepared server. A spawn that fails leaves the server `failed` and throws saying why. */
  async spawn(prep: PreparedSpawn, launcher: Launcher | null): Promise<void> {
    this.modelPath = prep.modelPath;
    this.argv = prep.launch.args;
    const env = serverEnvironment(process.env, { ...this.ctx.settings.serverEnv, ...prep.launch.env, [RUN_MARKER_VAR]: this.markerValue });
    // Wall-clock spawn time: /proc's start time is exact as an identity but its boot-time base has 1 s resolution.
    const spawnedAt = new Date().toISOString();
    try {
      const p = await spawnServer(prep, env, launcher);
      this.pid = p.pid;
      this.startedAt = spawnedAt;
      this.ownChild = true;
      this.cancels.add(p.detach);
      void p.exited.then((e) => (e.lost ? this.watchPidExit() : this.onExit(e)));
    } catch (err) {
      this.exit = { code: null, signal: null };
      this.resolveExit(this.exit);
      const reason = `could not spawn ${prep.binary.path}: ${errorMessage(err)}`;
      this.endRun("failed", reason, "crash");
      this.transition("failed", reason, "crash");
      throw new AgentError({ code: "FAILED", message: `cannot start ${this.id}: ${reason}`, data: this.status() }, { cause: err });
    }
  }

  /** After the spawn (and the batch's other spawns): identity, record, log, descendants, then readiness. */
  async begin(prep: PreparedSpawn): Promise<ServerStatus> {
    const pid = this.pid!;
    const info = await processInfo(pid);
    this.startToken = info?.startToken ?? null;
    this.tree = new Descendants({ pid, startToken: this.startToken }, `${RUN_MARKER_VAR}=${this.markerValue}`);
    this.ctx.scanner.add(this.tree);
    if (info && !info.zombie) {
      // Not awaited: readiness polling starts meanwhile, and waits for it before reporting ready.
      void this.record.write({
        version: 1, id: this.id, pid, pgid: pid, startToken: info.startToken, startedAt: this.startedAt!, port: this.spec.port,
        bindAddress: this.spec.bindAddress, binary: prep.binary.path, argv: prep.launch.args, logPath: this.logPath, specHash: this.specHash,
        spec: this.spec, readyAt: null, agentPid: process.pid, runMarker: this.markerValue,
      });
    }
    this.transition("starting", `spawned pid ${pid}`);
    // From the run's header line: the live log shows where this run begins, and with which command line.
    this.watchLog(prep.log.headerOffset);
    // Just spawned, it does not listen yet: the first probe waits for the first timer (10 ms) or a hint.
    return this.awaitReady(false);
  }

  /** Asks a loading server's readiness wait to give up now, so a stop queued behind its start runs at once. */
  requestStop(): void {
    if (this.state !== "starting" || this.stopAsked) return;
    this.stopAsked = true;
    this.readiness.wake();
  }

  private ownership(): Promise<OwnershipSeen> {
    if (this.pid === null) return Promise.resolve({ ours: true, seen: false });
    const tree = this.tree;
    return listenerOwnershipSeen({
      port: this.spec.port, host: probeHost(this.spec.bindAddress), pid: this.pid, modelPath: this.modelPath, apiKey: this.spec.apiKey,
      descendants: async () => {
        if (!tree) return [];
        tree.observe(await processTable());
        return tree.list().map((p) => p.pid);
      },
    });
  }

  private async awaitReady(probeAtOnce: boolean): Promise<ServerStatus> {
    const outcome = await this.readiness.run({
      host: probeHost(this.spec.bindAddress), port: this.spec.port, deadlineMs: this.spec.readinessDeadlineMs, exited: this.exited,
      stopRequested: () => this.stopAsked, owned: () => this.ownership(),
      beforeReady: async () => void (this.record.pending && (await this.record.flushed())),
    }, probeAtOnce);
    if (outcome.kind === "ready") return this.becameReady();
    // A stop request took over (a server still loading, started here or adopted): it reports the outcome.
    if (outcome.kind === "stop-requested") throw new AgentError({ code: "FAILED", message: `${this.id} was stopped before it became ready` });
    const foreign = outcome.foreign ? `; ${describeForeign(outcome.foreign)}` : "";
    if (outcome.kind === "exited") {
      this.logTail = await this.tail();
      // Anything it started before it died (grace 0: it is dead already; its helpers get no say).
      const end = await this.endProcesses(0);
      const reason = `${describeExit(outcome.exit)} while loading${foreign || this.heldText(end)}`;
      this.endRun("failed", reason, "crash");
      await this.record.remove();
      this.transition("failed", reason, "crash");
    } else {
      this.transition("stopping", `not ready within ${this.spec.readinessDeadlineMs} ms`);
      const end = await this.endProcesses(this.spec.stopGraceMs);
      this.logTail = await this.tail();
      const reason = `not ready within ${this.spec.readinessDeadlineMs} ms (last: ${describeHealth(outcome.last)})${foreign || this.heldText(end)}`;
      this.endRun("failed", reason, "deadline");
      await this.record.remove();
      this.transition("failed", reason, "deadline");
    }
    const status = this.status();
    throw new AgentError({ code: "FAILED", message: `${this.id} failed to start: ${status.reason}${status.logTail.length ? `${LOG_TAIL_MARK}\n${status.logTail.join("\n")}` : ""}`, data: status });
  }

  private becameReady(): ServerStatus {
    const readyAt = new Date().toISOString();
    this.readyAt = readyAt;
    this.transition("ready", `healthy (pid ${this.pid})`);
    // readyAt goes into the record a little later, out of the way of other servers still loading; into the
    // record as it is on disk, so a stop request another agent wrote meanwhile is kept (and a record it
    // removed is not written again).
    const t = setTimeout(() => {
      if (!this.record.current || this.state !== "ready") return;
      const onDisk = this.ctx.records.readNow(this.id);
      if (onDisk && onDisk !== "missing" && onDisk.pid === this.pid && !onDisk.stopRequest) void this.record.write({ ...onDisk, readyAt });
    }, AGENT_DEFAULTS.readyRecordDelayMs);
    t.unref();
    this.cancels.add(() => clearTimeout(t));
    this.watchHealth();
    return this.status();
  }

  // ---- stop --------------------------------------------------------------

  /**
   * Ends every process the server started and confirms the port is free:
   * then `stopped` with `cause`. When something still holds the port the
   * stop is incomplete: `failed` (not a live server of ours, and not
   * stopped: a person must end the holder) with the holder named; asking
   * again tries again.
   */
  async stop(graceMs: number, cause: StopCause): Promise<ServerStatus> {
    if (this.state === "stopped") return this.status();
    if (!isAlive(this.state) && this.heldPort === null) {
      // exited/failed: already gone; report it as stopped now that someone asked.
      this.transition("stopped", this.reason, cause);
      return this.status();
    }
    const wasRunning = isAlive(this.state);
    this.stopAsked = true;
    this.transition("stopping", "stop requested");
    // Said before the signal: another agent watching this server sees a stop, not a crash. In the note,
    // which outlives the record this stop removes (stop-notes.ts), and in the record, for earlier agents.
    const rec = this.record.current;
    if (rec && wasRunning) {
      const request = { by: process.pid, agent: this.ctx.instanceId, at: new Date().toISOString() };
      await this.ctx.stopNotes.write(this.id, { pid: rec.pid, startToken: rec.startToken, ...request })
        .catch((err: unknown) => this.ctx.log.warn("could not write the stop note", { id: this.id, error: err }));
      await this.record.write({ ...rec, stopRequest: request });
    }
    const end = await this.endProcesses(graceMs);
    // Our own child: wait briefly for it to be reaped so exit code and signal are known.
    if (this.ownChild && !this.exit) await Promise.race([this.exited, sleep(AGENT_DEFAULTS.exitStatusWaitMs)]);
    this.stopLeftHeld = end.portHeldBy;
    if (end.portHeldBy) {
      // The words stay for apps older than `stopIncomplete`, which read them.
      const reason = `stop incomplete: ${describeHeldPort(end.portHeldBy)}`;
      this.endRun("failed", reason, cause);
      await this.record.remove();
      this.transition("failed", reason, cause);
      return this.status();
    }
    let reason: string = STOP_CAUSE_TEXT[cause];
    if (end.group?.ended === "term-again") reason += `; still running ${AGENT_DEFAULTS.termRepeatMs} ms after SIGTERM, ended by a second one`;
    if (end.group?.ended === "kill") reason = `stopped with SIGKILL: still running ${graceMs} ms after SIGTERM`;
    if (end.group?.ended === "foreign") reason = `pid ${this.pid} now belongs to another process; it was not signalled`;
    if (end.survivors.length > 0) reason += `; pids ${end.survivors.join(", ")} survived SIGKILL`;
    if (end.killedDescendants.length > 0) reason += `; ended ${end.killedDescendants.length} process(es) it started outside its group (pids ${end.killedDescendants.join(", ")})`;
    this.endRun("stopped", reason, cause);
    await this.record.remove();
    this.transition("stopped", reason, cause);
    return this.status();
  }

  /** Ends the group and the descendants, then looks at the port; remembers a holder (`heldPort`). */
  private async endProcesses(graceMs: number): Promise<EndResult> {
    const pid = this.pid;
    if (pid === null) return { group: null, killedDescendants: [], survivors: [], portHeldBy: null };
    const { port, bindAddress } = this.spec;
    const end = await endServer(this.terminateTarget(), pid, this.tree, graceMs, { killDeadlineMs: AGENT_DEFAULTS.killDeadlineMs });
    end.portHeldBy = await confirmPortFree(port, bindAddress, this.tree, AGENT_DEFAULTS.portFreeDeadlineMs);
    this.heldPort = end.portHeldBy;
    if (end.portHeldBy) this.ctx.log.warn("port still held after the server ended", { id: this.id, holder: end.portHeldBy });
    return end;
  }

  /** This run's process group as terminate.ts signals it (its leader's pid and start time); null before both are known. */
  private terminateTarget(): TerminateTarget | null {
    const { pid, startToken } = this;
    return pid !== null && startToken ? { pid, pgid: pid, startToken, port: this.spec.port, bindAddress: this.spec.bindAddress } : null;
  }

  private heldText(end: EndResult): string {
    return end.portHeldBy ? `; ${describeHeldPort(end.portHeldBy)}` : "";
  }

  // ---- exits -------------------------------------------------------------

  private onExit(e: Exit): void {
    if (this.exit) return;
    this.exit = e;
    this.resolveExit(e);
    // Starting and stopping servers are handled by readiness and stop(), which wait on `exited`.
    if (this.state !== "ready" && this.state !== "unhealthy") return;
    // Read now, before an agent that stopped the server starts it again (a start removes the note).
    const evidence = this.record.current ? this.stopEvidence() : null;
    void this.afterCrash(e, evidence);
  }

  private stopEvidence(): StopEvidence {
    return { record: this.ctx.records.readNow(this.id), note: this.ctx.stopNotes.readNow(this.id) };
  }

  private async afterCrash(e: Exit, evidence: StopEvidence | null): Promise<void> {
    const elsewhere = this.stoppedElsewhere(evidence);
    this.logTail = await this.tail();
    // A stop that came meanwhile reports the outcome.
    if (this.state !== "ready" && this.state !== "unhealthy") return;
    if (elsewhere) {
      // The agent that stopped it removes the record and reaps what is left.
      this.endRun("stopped", elsewhere, "host-stop");
      this.transition("stopped", elsewhere, "host-stop");
      return;
    }
    const reason = `${describeExit(e)}${this.outsideExit === "ended" ? `; it had begun exiting on a signal from outside the app ('cleaning up before exit' in its log) and still ran ${AGENT_DEFAULTS.termRepeatMs} ms later: ended by a second SIGTERM` : ""}`;
    this.endRun("exited", reason, "crash");
    this.transition("exited", reason, "crash");
    await this.record.remove();
    // A crashed leader may leave children behind (in its group or escaped): end them so nothing of it lingers.
    const end = await this.endProcesses(AGENT_DEFAULTS.leftoverGraceMs).catch(() => null);
    if (end && (end.killedDescendants.length > 0 || (end.group !== null && end.group.ended !== "gone" && end.group.ended !== "foreign"))) this.ctx.log.warn("reaped leftovers of a crashed server", { id: this.id, ended: end.group?.ended, descendants: end.killedDescendants });
  }

  /**
   * Why a server that ended while this agent was not stopping it was stopped
   * by someone else on purpose (another agent on the same state folder, e.g.
   * `host-agent stop-metal-servers`): that agent's stop request, in its stop
   * note or the record. Null: nobody asked; it crashed. A missing record
   * says nothing: the stopper removes it when it is done, but so does any
   * agent that saw a crash first.
   */
  private stoppedElsewhere(evidence: StopEvidence | null): string | null {
    const by = evidence ? this.stopRequestedBy(evidence) : null;
    return by === null ? null : `stopped on the host by another agent (pid ${by}, e.g. stop-metal-servers)`;
  }

  /**
   * The pid of another agent that asked this very process to stop (a note
   * naming its pid and start time, or a request in its record), if the
   * request is recent: an older one is from an agent that died halfway
   * through its stop, and the server lived on.
   */
  private stopRequestedBy({ record, note }: StopEvidence): number | null {
    const fresh = (at: string) => Date.now() - Date.parse(at) <= this.spec.stopGraceMs + AGENT_DEFAULTS.stopRequestSlackMs;
    if (note && note.pid === this.pid && note.startToken === this.startToken && note.agent !== this.ctx.instanceId && fresh(note.at)) return note.by;
    const req = record && record !== "missing" && record.pid === this.pid ? record.stopRequest : null;
    return req && req.agent !== this.ctx.instanceId && fresh(req.at) ? req.by : null;
  }

  // ---- watching ------------------------------------------------------------

  private watchLog(fromOffset: number): void {
    this.logWatch = new LogWatch({
      logPath: this.logPath, fromOffset, maxBytes: this.ctx.settings.logMaxBytes, log: this.ctx.log, loading: () => this.state === "starting",
      onLines: (lines) => {
        this.liveLog.push(lines);
        if (this.state === "starting" && lines.some(isReadyHint)) this.readiness.hint();
        if ((this.state === "ready" || this.state === "unhealthy") && !this.stopAsked && lines.some(isExitingHint)) this.finishOutsideExit();
      },
    });
  }

  /**
   * llama-server logged that it is exiting, and nobody here stopped it: a SIGTERM or SIGINT from outside the
   * app (kill, Activity Monitor's Quit). It would wait for the clients of its open requests, the gateway's
   * streams among them, which wait for it (their silence deadline is 10 minutes). Still running
   * AGENT_DEFAULTS.termRepeatMs later, it gets the second SIGTERM a stop would give it (terminate.ts), and
   * its exit is reported as usual (a crash, for the model's restart policy), with this said in the reason.
   */
  private finishOutsideExit(): void {
    if (this.outsideExit !== null) return;
    this.outsideExit = "began";
    const target = this.terminateTarget();
    const pid = target?.pid ?? null;
    const t = setTimeout(() => {
      this.cancels.delete(cancel);
      if (this.exit || this.stopAsked || target === null || pid !== this.pid) return;
      void signalOwnedGroup(target, "SIGTERM").then(
        (sent) => {
          if (!sent) return;
          this.outsideExit = "ended";
          this.ctx.log.warn("the server began exiting on a signal from outside the app and still ran; sent it a second SIGTERM", { id: this.id, pid, afterMs: AGENT_DEFAULTS.termRepeatMs });
        },
        (err: unknown) => this.ctx.log.warn("could not send a second SIGTERM to a server exiting on its own", { id: this.id, pid, error: err }),
      );
    }, AGENT_DEFAULTS.termRepeatMs);
    t.unref();
    const cancel = () => clearTimeout(t);
    this.cancels.add(cancel);
  }

  /** Periodic /health: a ready server that stops answering becomes unhealthy, and ready again when it recovers. */
  private watchHealth(): void {
    const s = this.ctx.settings;
    this.cancels.add(watchHealth({
      host: probeHost(this.spec.bindAddress), port: this.spec.port, intervalMs: s.healthIntervalMs,
      timeoutMs: s.healthTimeoutMs ?? Math.min(AGENT_DEFAULTS.healthTimeoutMaxMs, s.healthIntervalMs),
      active: () => this.state === "ready" || this.state === "unhealthy",
      onResult: (r) => {
        if (this.state === "ready" && r.kind !== "ok") {
          // Another agent is stopping it (it stops answering first): its exit is reported as that stop.
          if (this.record.current && this.stopRequestedBy(this.stopEvidence()) !== null) return;
          this.transition("unhealthy", describeHealth(r));
        }
        else if (this.state === "unhealthy" && r.kind === "ok") this.transition("ready", "health check passed again");
      },
    }));
  }

  /** Exit watching for a process that is not our child (adopted, or its spawn helper died). */
  private watchPidExit(): void {
    if (this.pid === null || this.startToken === null) return;
    const s = this.ctx.settings;
    this.cancels.add(watchPidExit({
      pid: this.pid, startToken: this.startToken, pollMs: s.exitPollMs ?? AGENT_DEFAULTS.exitPollMs,
      identityEvery: Math.max(1, s.exitPollIdentityEvery ?? (process.platform === "linux" ? 1 : 40)),
      onGone: () => this.onExit({ code: null, signal: null }),
    }));
  }

  /**
   * A run has ended: its last line goes into its log (runFooter: state, cause, reason), then the watching
   * stops, so the follower sends that line live after the server's own last lines. Once per run: a run
   * another agent already ended in the log (it stopped the server, or saw the crash first), or a second
   * stop of a run whose stop left the port held, adds no line; nor a run that ended in the log of a later one
   * (another agent started it again before this one saw the end) (run-footer.ts). A log that cannot be
   * written is warned about and the run ends all the same (the status carries the same words).
   */
  private endRun(state: "stopped" | "exited" | "failed", reason: string, cause: StopCause): void {
    endRunInLog(this.ctx.log, this, state, cause, reason);
    this.stopWatching();
  }

  /** Stops the timers, the log watch (its last lines still go out) and the descendant scan. */
  private stopWatching(): void {
    for (const c of this.cancels) c();
    this.cancels.clear();
    if (this.tree) this.ctx.scanner.remove(this.tree);
    const watch = this.logWatch;
    // Until the last lines have gone out, `logs` cuts its tail where this follower got to.
    const finished = watch?.finish().finally(() => {
      this.liveLog.flush();
      if (this.logWatch === watch) this.logWatch = null;
    });
    if (finished) this.watchFinished = finished.catch(() => undefined);
  }

  /** Settles once the last run's log watch has sent its last lines (at once when none was finishing). */
  private watchFinished: Promise<void> = Promise.resolve();

  /**
   * Appends `line` (one line: the app's note, run-header.ts appNote) to this server's log and sends it live:
   * while a run is watched, its follower reads and sends it with the server's own lines; else it goes out
   * here, after the last run's last lines have gone out (never twice: the check and the append are one step).
   */
  async appendNote(line: string): Promise<void> {
    await this.watchFinished;
    const watched = this.logWatch !== null;
    appendFileSync(this.logPath, `${lineBreakBefore(this.logPath)}${line}\n`);
    if (!watched) this.liveLog.push([line]);
  }

  /**
   * The last lines of this run's log (a failure's or an exit's evidence): the lines before this run's header
   * (RUN_HEADER_PREFIX) are an earlier run's, which would lead a failure's text with a healthy run's last words.
   * Nor a run's last line (RUN_FOOTER_PREFIX), which another agent that saw this run end first may have written:
   * the evidence is the server's own lines.
   */
  private async tail(): Promise<string[]> {
    const lines = await readLogTail(this.logPath, this.ctx.settings.logTailLines ?? AGENT_DEFAULTS.logTailLines).catch(() => []);
    const header = lines.findLastIndex((l) => l.startsWith(RUN_HEADER_PREFIX));
    return (header > 0 ? lines.slice(header) : lines).filter((l) => !l.startsWith(RUN_FOOTER_PREFIX));
  }

  // ---- adoption ------------------------------------------------------------

  /** Takes over a live server from a previous agent's record (checked by the caller: same pid, same start time). */
  async adopt(rec: ServerRecord): Promise<void> {
    Object.assign(this, { pid: rec.pid, startToken: rec.startToken, startedAt: rec.startedAt, readyAt: rec.readyAt });
    this.record.current = rec;
    this.argv = rec.argv;
    const m = rec.argv.indexOf("--model");
    if (m >= 0 && rec.argv[m + 1]) this.modelPath = rec.argv[m + 1]!;
    // A record older than the marker: a value nothing carries, so only the tree scans find its descendants.
    this.tree = new Descendants({ pid: rec.pid, startToken: rec.startToken }, `${RUN_MARKER_VAR}=${rec.runMarker ?? randomUUID()}`);
    this.ctx.scanner.add(this.tree);
    const size = await stat(this.logPath).then((s) => s.size, () => 0);
    this.watchLog(size);
    this.watchPidExit();
    const h = await probeHealth(probeHost(rec.bindAddress), rec.port, AGENT_DEFAULTS.adoptProbeTimeoutMs);
    const owner = h.kind === "ok" ? await this.ownership() : null;
    if (h.kind === "ok" && owner?.ours) {
      this.readyAt ??= new Date().toISOString();
      this.transition("ready", `adopted (pid ${rec.pid})`);
      this.watchHealth();
    } else if (h.kind === "loading") {
      this.transition("starting", `adopted while loading (pid ${rec.pid})`);
      void this.awaitReady(true).catch(() => undefined);
    } else {
      this.transition("unhealthy", `adopted (pid ${rec.pid}); ${owner && !owner.ours ? describeForeign(owner.holder) : describeHealth(h)}`);
      this.watchHealth();
    }
  }

  /** Stops watching; the process keeps running and a later agent re-adopts it. */
  close(): void {
    this.stopWatching();
  }
}
