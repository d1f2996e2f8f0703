import type { ServerStatus } from "synapse-host-agent/protocol";
import { describe, expect, it } from "vitest";
import { decideReport, inferCause, stateText, type AgentReport, type ReportContext } from "./report-decision";
import type { EntrySnapshot } from "./server-entry";

const T0 = "2026-11-30T00:00:00.000Z";
const T1 = "2026-11-30T00:01:00.000Z";
const NOW = Date.parse("2026-11-30T00:02:00.000Z");

const entry = (extra: Partial<EntrySnapshot> = {}): EntrySnapshot & { name: string } => ({ name: "alpha", state: "stopped", pid: null, startedAt: null, backend: null, ended: null, cause: null, stopAsked: null, stopCause: "requested", ...extra });

const status = (state: ServerStatus["state"], pid: number | null, extra: Partial<ServerStatus> = {}): ServerStatus => ({
  id: "alpha",
  state,
  pid,
  port: 9000,
  startedAt: pid === null ? null : T0,
  readyAt: null,
  exitCode: null,
  signal: null,
  reason: null,
  logPath: null,
  specHash: null,
  logTail: [],
  ...extra,
});

const report = (s: ServerStatus, extra: Partial<AgentReport> = {}): AgentReport => ({ source: "event", status: s, appStopPending: false, ...extra });
const ctx = (extra: Partial<ReportContext> = {}): ReportContext => ({ now: NOW, desired: null, closing: false, ...extra });

describe("decideReport", () => {
  it("records a new process starting, then ready: start time set, backend reset, CPU when no GPU was named, last error cleared", () => {
    const starting = decideReport(entry({ state: "exited", pid: 7, backend: "Metal" }), report(status("starting", 100)), ctx());
    expect(starting).toMatchObject({ kind: "record", change: { state: "starting", pid: 100, backend: null, cause: null }, data: { observed: "starting", pid: 100, stoppedAt: null, gpuBackend: null, cause: null } });
    const ready = decideReport(entry({ state: "starting", pid: 100, startedAt: T0 }), report(status("ready", 100)), ctx());
    expect(ready).toMatchObject({ kind: "record", change: { backend: "CPU" }, data: { observed: "ready", gpuBackend: "CPU", lastError: null }, then: [] });
  });

  it("a stop reported while our stop call is unanswered is ours, however late the report: requested, still wanted as the newer command says", () => {
    const d = decideReport(entry({ state: "stopping", pid: 100, startedAt: T0 }), report(status("stopped", 100), { appStopPending: true }), ctx({ desired: "running" }));
    expect(d).toMatchObject({ kind: "record", change: { cause: "requested" }, data: { observed: "stopped", cause: "requested" }, then: [] });
    expect(d.kind === "record" && d.data.desired).toBe(undefined);
  });

  it("a stop of the process this app asked to stop is ours even after our call stopped waiting for the answer", () => {
    const d = decideReport(entry({ state: "stopping", pid: 100, startedAt: T0, stopAsked: { pid: 100, startedAtMs: Date.parse(T0) } }), report(status("stopped", 100)), ctx({ desired: "running" }));
    expect(d).toMatchObject({ kind: "record", change: { cause: "requested" }, then: [] });
  });

  it("a stop of a live server, reported as an event with no stop of ours pending and no cause, while wanted running: stopped on the host, no longer wanted", () => {
    const d = decideReport(entry({ state: "ready", pid: 100, startedAt: T0 }), report(status("stopped", 100)), ctx({ desired: "running" }));
    expect(d).toMatchObject({ kind: "record", change: { cause: "host-stop" }, data: { desired: "stopped", nextRestartAt: null, cause: "host-stop" }, then: [{ kind: "host-stop" }] });
    expect(d.kind === "record" && d.event.message).toMatch(/alpha: stopped on its host, outside this app/);
  });

  it("the agent's cause wins over inference: requested is never a host stop, host-stop is one even while a stop of ours is pending", () => {
    const requested = decideReport(entry({ state: "ready", pid: 100, startedAt: T0 }), report(status("stopped", 100, { cause: "requested" })), ctx({ desired: "running" }));
    expect(requested).toMatchObject({ kind: "record", change: { cause: "requested" }, then: [] });
    const onHost = decideReport(entry({ state: "ready", pid: 100, startedAt: T0 }), report(status("stopped", 100, { cause: "host-stop" }), { appStopPending: true }), ctx({ desired: "running" }));
    expect(onHost).toMatchObject({ kind: "record", data: { desired: "stopped", cause: "host-stop" }, then: [{ kind: "host-stop" }] });
  });

  it("no host stop while shutting down, from a snapshot, or when it was not wanted running", () => {
    const live = entry({ state: "ready", pid: 100, startedAt: T0 });
    for (const [r, c] of [
      [report(status("stopped", 100)), ctx({ desired: "running", closing: true })],
      [report(status("stopped", 100), { source: "snapshot" }), ctx({ desired: "running" })],
      [report(status("stopped", 100)), ctx({ desired: "stopped" })],
    ] as const) {
      expect(decideReport(live, r, c)).toMatchObject({ kind: "record", change: { cause: "requested" }, then: [] });
    }
  });

  it("a restart's start that failed while loading is recorded and told as exited (the policy decides the rest), with no crash of its own: the start's outcome brings it", () => {
    const failed = status("failed", 100, { exitCode: 1, reason: "exited with code 1 while loading", cause: "crash", logTail: ["llama_model_load: error loading model"] });
    const loading = entry({ state: "starting", pid: 100, startedAt: T0 });
    const d = decideReport(loading, report(failed), ctx({ restartStarting: true }));
    expect(d).toMatchObject({ kind: "record", change: { state: "exited", cause: "crash" }, data: { observed: "exited", lastExitCode: 1 }, then: [] });
    expect(d.kind === "record" && d.event).toMatchObject({ state: "exited", message: "alpha: exited (did not load: exited with code 1 while loading)" });
    // The start's outcome (a snapshot of the same end) is the same end.
    const ended = { pid: 100, startedAtMs: Date.parse(T0) };
    expect(decideReport(entry({ state: "exited", pid: 100, startedAt: T0, ended }), report(failed, { source: "snapshot" }), ctx({ restartStarting: true }))).toMatchObject({ kind: "ignore" });
    // A user's start that fails so is failed.
    expect(decideReport(loading, report(failed), ctx())).toMatchObject({ kind: "record", change: { state: "failed" }, event: { state: "failed", message: "alpha: failed (did not load: exited with code 1 while loading)" } });
  });

  it("a crash's planned restart (nextRestartAt) ends when a process of it is recorded (the restart's starting, ready) or it is failed; an exit leaves it to the restart policy's decision", () => {
    // The restart's start kept the due time until now (operations.ts): `starting` is its outcome.
    const starting = decideReport(entry({ state: "exited", pid: 7, startedAt: T0, ended: { pid: 7, startedAtMs: Date.parse(T0) } }), report(status("starting", 100, { startedAt: T1 })), ctx());
    expect(starting).toMatchObject({ kind: "record", data: { observed: "starting", nextRestartAt: null } });
    // Its ready, when no starting was recorded (a snapshot: the start call's result, or a status after an app restart).
    const ready = decideReport(entry({ state: "exited", pid: 7, startedAt: T0 }), report(status("ready", 100, { startedAt: T1 }), { source: "snapshot" }), ctx());
    expect(ready).toMatchObject({ kind: "record", data: { observed: "ready", nextRestartAt: null } });
    // Failed with no restart to follow: left alone until someone starts it.
    const failed = decideReport(entry({ state: "starting", pid: 100, startedAt: T1 }), report(status("failed", 100, { startedAt: T1, reason: "exited with code 1 while loading", cause: "crash" })), ctx());
    expect(failed).toMatchObject({ kind: "record", data: { observed: "failed", nextRestartAt: null } });
    // An exit, and a restart's own failed start (read as exited): the decision written with it (or after it) says.
    const exited = decideReport(entry({ state: "ready", pid: 100, startedAt: T1 }), report(status("exited", 100, { startedAt: T1, reason: "killed by SIGKILL" })), ctx());
    expect(exited.kind === "record" && "nextRestartAt" in exited.data).toBe(false);
    const restartFailed = decideReport(entry({ state: "starting", pid: 100, startedAt: T1 }), report(status("failed", 100, { startedAt: T1, reason: "exited with code 1 while loading", cause: "crash" })), ctx({ restartStarting: true }));
    expect(restartFailed.kind === "record" && "nextRestartAt" in restartFailed.data).toBe(false);
  });

  it("an exit is a crash for the restart policy, recorded once per process (pid + start time)", () => {
    const exited = status("exited", 100, { exitCode: 1, reason: "exited with code 1", logTail: ["boom"] });
    const first = decideReport(entry({ state: "ready", pid: 100, startedAt: T0 }), report(exited), ctx());
    expect(first).toMatchObject({
      kind: "record",
      change: { state: "exited", cause: "crash", ended: { pid: 100, startedAtMs: Date.parse(T0) } },
      data: { observed: "exited", pid: null, lastExitCode: 1, lastError: "exited with code 1; last log lines:\nboom", cause: "crash" },
      then: [{ kind: "crash", why: "exited with code 1" }],
    });
    expect(first.kind === "record" && first.event.message).toBe("alpha: exited (crashed: exited with code 1)");
    // Given up on (failed) after crashes, the agent still reports that process as exited: not a new crash.
    const ended = { pid: 100, startedAtMs: Date.parse(T0) };
    expect(decideReport(entry({ state: "failed", pid: 100, startedAt: T0, ended }), report(exited, { source: "snapshot" }), ctx())).toEqual({ kind: "ignore", why: "end-already-recorded" });
    // After an app restart the row keeps the start time but not the pid: still the same end.
    expect(decideReport(entry({ state: "failed", startedAt: T0, ended: { pid: null, startedAtMs: Date.parse(T0) } }), report(exited, { source: "snapshot" }), ctx())).toEqual({ kind: "ignore", why: "end-already-recorded" });
    // The same pid with another start time is another process (pid reused): its exit counts.
    expect(decideReport(entry({ state: "failed", pid: 100, startedAt: T0, ended }), report({ ...exited, startedAt: T1 }), ctx())).toMatchObject({ kind: "record", then: [{ kind: "crash" }] });
  });

  it("a stop after an exit is recorded (stopped on request), not ignored as the same end", () => {
    const ended = { pid: 100, startedAtMs: Date.parse(T0) };
    const d = decideReport(entry({ state: "exited", pid: 100, startedAt: T0, ended }), report(status("stopped", 100)), ctx({ desired: "stopped" }));
    expect(d).toMatchObject({ kind: "record", change: { state: "stopped", cause: "requested" }, then: [] });
  });

  it("how a process ended belongs to that process: a new process clears it, a stop of another process replaces it, a stop after the exit keeps it", () => {
    const ended = { pid: 100, startedAtMs: Date.parse(T0) };
    // Killed by SIGKILL: recorded with its exit.
    const killed = decideReport(entry({ state: "ready", pid: 100, startedAt: T0 }), report(status("exited", 100, { signal: "SIGKILL" })), ctx());
    expect(killed).toMatchObject({ kind: "record", data: { lastExitCode: null, lastSignal: "SIGKILL" } });
    // Its restart: a new process, which has not ended.
    for (const state of ["starting", "ready"] as const) {
      const next = decideReport(entry({ state: "exited", pid: 100, startedAt: T0, ended }), report(status(state, 200, { startedAt: T1 })), ctx());
      expect(next.kind === "record" && [next.data.lastExitCode, next.data.lastSignal]).toEqual([null, null]);
    }
    // That process stopped by the user: its own end, not the crash before it.
    const stopped = decideReport(entry({ state: "ready", pid: 200, startedAt: T1, ended }), report(status("stopped", 200, { startedAt: T1, exitCode: 0 }), { appStopPending: true }), ctx({ desired: "stopped" }));
    expect(stopped.kind === "record" && [stopped.data.lastExitCode, stopped.data.lastSignal]).toEqual([0, null]);
    const termed = decideReport(entry({ state: "stopping", pid: 200, startedAt: T1, ended }), report(status("stopped", 200, { startedAt: T1, signal: "SIGTERM" }), { appStopPending: true }), ctx({ desired: "stopped" }));
    expect(termed.kind === "record" && [termed.data.lastExitCode, termed.data.lastSignal]).toEqual([null, "SIGTERM"]);
    // Exited otherwise later: replaced.
    const coded = decideReport(entry({ state: "ready", pid: 200, startedAt: T1, ended }), report(status("exited", 200, { startedAt: T1, exitCode: 3 })), ctx());
    expect(coded.kind === "record" && [coded.data.lastExitCode, coded.data.lastSignal]).toEqual([3, null]);
    // A stop of the killed process after its exit: that process's end is recorded already and stays.
    const after = decideReport(entry({ state: "exited", pid: 100, startedAt: T0, ended }), report(status("stopped", 100)), ctx({ desired: "stopped" }));
    expect(after.kind === "record" && ["lastExitCode" in after.data, "lastSignal" in after.data]).toEqual([false, false]);
  });

  it("a start that never spawned (failed, no cause) is newer than the process before it: the agent's record of that process changes nothing", () => {
    const ended = { pid: 100, startedAtMs: Date.parse(T0) };
    // The user stopped pid 100, then a start was refused (port held): the agent keeps reporting pid 100 as stopped.
    const refused = entry({ state: "failed", cause: null, pid: 100, startedAt: T0, ended });
    const oldStop = status("stopped", 100, { cause: "requested", reason: "stopped on request", exitCode: 0 });
    for (const source of ["snapshot", "event"] as const) {
      expect(decideReport(refused, report(oldStop, { source }), ctx({ desired: "running" }))).toEqual({ kind: "ignore", why: "before-failed-start" });
    }
    // After an app restart the row keeps that process's start time, not its pid: the same.
    const loaded = entry({ state: "failed", cause: null, pid: null, startedAt: T0, ended: { pid: null, startedAtMs: Date.parse(T0) } });
    expect(decideReport(loaded, report(status("stopped", 100, { cause: "shutdown" }), { source: "snapshot" }), ctx({ desired: "running" }))).toEqual({ kind: "ignore", why: "before-failed-start" });
    // A later process (started on the host, say) is news: its start and its end are recorded.
    expect(decideReport(refused, report(status("starting", 200, { startedAt: T1 }), { source: "snapshot" }), ctx())).toMatchObject({ kind: "record", change: { state: "starting", pid: 200 } });
    expect(decideReport(refused, report(status("stopped", 200, { startedAt: T1, cause: "host-stop" }), { source: "snapshot" }), ctx())).toMatchObject({ kind: "record", change: { state: "stopped", pid: 200 } });
    // A failure of the process itself (it has a cause): the stop the agent records after it is recorded.
    const crashed = entry({ state: "failed", cause: "crash", pid: 100, startedAt: T0, ended });
    expect(decideReport(crashed, report(status("stopped", 100, { cause: "requested" }), { source: "snapshot" }), ctx({ desired: "stopped" }))).toMatchObject({ kind: "record", change: { state: "stopped", cause: "requested" } });
  });

  it("a stop this app asked for with a cause of its own (the gateway's idle unload) records that cause, whatever the agent says", () => {
    const asked = { pid: 100, startedAtMs: Date.parse(T0) };
    const idle = entry({ state: "ready", pid: 100, startedAt: T0, stopAsked: asked, stopCause: "idle" });
    // An agent with stop-cause says "requested"; an older one says nothing.
    for (const cause of ["requested", undefined] as const) {
      const d = decideReport(idle, report(status("stopped", 100, cause ? { cause } : {}), { appStopPending: true }), ctx({ desired: "stopped" }));
      expect(d).toMatchObject({ kind: "record", change: { state: "stopped", cause: "idle" }, data: { cause: "idle" } });
    }
    // A stop on the host of a server we never asked to stop is still the host's.
    const other = entry({ state: "ready", pid: 100, startedAt: T0, stopCause: "idle" });
    expect(decideReport(other, report(status("stopped", 100, { cause: "host-stop" })), ctx({ desired: "running" }))).toMatchObject({ change: { cause: "host-stop" } });
  });

  it("the stopping event of a stop this app asked for says why from the start (an eviction, an idle unload), never 'stop requested'", () => {
    const asked = { pid: 100, startedAtMs: Date.parse(T0) };
    const stopping = status("stopping", 100, { reason: "stop requested" });
    const text = (e: EntrySnapshot & { name: string }, pending = true) => {
      const d = decideReport(e, report(stopping, { appStopPending: pending }), ctx({ desired: "stopped" }));
      return d.kind === "record" ? d.event.message : null;
    };
    const live = { state: "ready", pid: 100, startedAt: T0 } as const;
    expect(text(entry({ ...live, stopCause: "evicted", stopNote: "evicted to make room for fresh" }))).toBe("alpha: stopping (evicted to make room for fresh)");
    // Reported after our call stopped waiting: still ours, by the process asked to stop.
    expect(text(entry({ ...live, stopAsked: asked, stopCause: "evicted", stopNote: "evicted to make room for fresh" }), false)).toBe("alpha: stopping (evicted to make room for fresh)");
    expect(text(entry({ ...live, stopCause: "idle" }))).toBe("alpha: stopping (unloaded after its idle time)");
    // A user's stop keeps the agent's words; so does a stop this app did not ask for.
    expect(text(entry({ ...live, stopCause: "requested" }))).toBe("alpha: stopping (stop requested)");
    expect(text(entry({ ...live, stopCause: "evicted", stopNote: "evicted to make room for fresh" }), false)).toBe("alpha: stopping (stop requested)");
  });

  it("a stop that left the port held is recorded as such from the agent's field, and cleared by the next report", () => {
    const held = { port: 9000, holderPid: 4242, holderCommand: "node" };
    const stopping = entry({ state: "stopping", pid: 100, startedAt: T0 });
    // The field decides, not the words (here not the agent's usual "stop incomplete: …").
    const failed = decideReport(stopping, report(status("failed", 100, { cause: "requested", reason: "port 9000 still held by pid 4242 (node)", stopIncomplete: held }), { appStopPending: true }), ctx({ desired: "stopped" }));
    expect(failed).toMatchObject({ kind: "record", data: { observed: "failed", stopIncomplete: JSON.stringify(held) } });
    const words = decideReport(stopping, report(status("failed", 100, { cause: "requested", reason: "stop incomplete: port 9000 still held by pid 4242 (node)", stopIncomplete: null }), { appStopPending: true }), ctx({ desired: "stopped" }));
    expect(words).toMatchObject({ kind: "record", data: { observed: "failed", stopIncomplete: null } });
    // An older agent (no field): its words.
    const older = decideReport(stopping, report(status("failed", 100, { reason: "stop incomplete: port 9000 still held by pid 4242 (node)" }), { appStopPending: true }), ctx({ desired: "stopped" }));
    expect(older).toMatchObject({ kind: "record", data: { stopIncomplete: JSON.stringify(held) } });
    // The retry's stopping, then its stop: cleared.
    const ended = { pid: 100, startedAtMs: Date.parse(T0) };
    const retry = decideReport(entry({ state: "failed", cause: "requested", pid: 100, startedAt: T0, ended }), report(status("stopping", 100)), ctx({ desired: "stopped" }));
    expect(retry).toMatchObject({ kind: "record", data: { observed: "stopping", stopIncomplete: null } });
    const stopped = decideReport(entry({ state: "stopping", pid: 100, startedAt: T0, ended }), report(status("stopped", 100, { cause: "requested", stopIncomplete: null })), ctx({ desired: "stopped" }));
    expect(stopped).toMatchObject({ kind: "record", data: { observed: "stopped", stopIncomplete: null } });
  });

  it("snapshots older than what events recorded are stale", () => {
    const live = entry({ state: "ready", pid: 100, startedAt: T1 });
    expect(decideReport(live, report(status("starting", 100, { startedAt: T1 }), { source: "snapshot" }), ctx())).toEqual({ kind: "ignore", why: "stale" });
    expect(decideReport(live, report(status("stopped", 99, { startedAt: T0 }), { source: "snapshot" }), ctx())).toEqual({ kind: "ignore", why: "older-process" });
    expect(decideReport(entry({ state: "stopped", pid: 100 }), report(status("stopped", null), { source: "snapshot" }), ctx())).toEqual({ kind: "ignore", why: "unchanged" });
    expect(decideReport(entry({ state: "exited", pid: 100 }), report(status("stopped", null), { source: "snapshot" }), ctx())).toEqual({ kind: "ignore", why: "nothing-new" });
    expect(decideReport(live, report(status("ready", 100, { startedAt: T1 })), ctx())).toEqual({ kind: "ignore", why: "unchanged" });
  });

  it("ready again after unhealthy says so", () => {
    const d = decideReport(entry({ state: "unhealthy", pid: 100, startedAt: T0, backend: "Metal" }), report(status("ready", 100)), ctx());
    expect(d).toMatchObject({ kind: "record", data: { gpuBackend: "Metal" }, event: { message: "alpha: ready again" } });
  });
});

describe("inferCause (agents without the stop-cause feature)", () => {
  it("exited is a crash; failed is the deadline, a crash while loading, or nothing when no process ran; stopped is requested", () => {
    expect(inferCause({ state: "exited", pid: 1, reason: null })).toBe("crash");
    expect(inferCause({ state: "failed", pid: 1, reason: "not ready within 1000 ms (last: 503)" })).toBe("deadline");
    expect(inferCause({ state: "failed", pid: 1, reason: "exited with code 1 while loading" })).toBe("crash");
    expect(inferCause({ state: "failed", pid: null, reason: "could not spawn" })).toBe(null);
    expect(inferCause({ state: "stopped", pid: 1, reason: null })).toBe("requested");
    expect(inferCause({ state: "ready", pid: 1, reason: null })).toBe(null);
  });
});

describe("stateText", () => {
  it("a stop the app asked for reads as its typed cause, not the agent's generic 'stopped on request' beside it", () => {
    expect(stateText("beta", "stopped", "stopped on request", "evicted")).toBe("beta: stopped (evicted to make room)");
    expect(stateText("beta", "stopped", "stopped on request", "requested")).toBe("beta: stopped (stopped on request)");
  });
  it("the agent's reason that begins with its cause's text and says more (a second SIGTERM, survivors) gives the rest once, after the cause the app gave", () => {
    const more = "still running 2000 ms after SIGTERM, ended by a second one";
    const stoppedFrom = (reason: string, cause: ServerStatus["cause"] | undefined, stopCause: EntrySnapshot["stopCause"]) => {
      const d = decideReport(entry({ state: "stopping", pid: 100, startedAt: T0, stopCause }), report(status("stopped", 100, { reason, ...(cause ? { cause } : {}) }), { appStopPending: true }), ctx({ desired: "stopped" }));
      return d.kind === "record" ? d.event.message : d.why;
    };
    // A person's stop; an eviction told to an agent that takes the cause; one told to an agent that does not.
    expect(stoppedFrom(`stopped on request; ${more}`, "requested", "requested")).toBe(`alpha: stopped (stopped on request: ${more})`);
    expect(stoppedFrom(`evicted to make room; ${more}`, "evicted", "evicted")).toBe(`alpha: stopped (evicted to make room: ${more})`);
    expect(stoppedFrom(`stopped on request; ${more}`, undefined, "evicted")).toBe(`alpha: stopped (evicted to make room: ${more})`);
    expect(stateText("alpha", "stopped", "stopped on request; pids 7, 8 survived SIGKILL", "requested")).toBe("alpha: stopped (stopped on request: pids 7, 8 survived SIGKILL)");
  });
  it("a reason that says more than the cause is kept", () => {
    expect(stateText("alpha", "exited", "killed by SIGKILL", "crash")).toMatch(/^alpha: exited \(.+: killed by SIGKILL\)$/);
    expect(stateText("alpha", "stopped", null, null)).toBe("alpha: stopped");
  });
});
