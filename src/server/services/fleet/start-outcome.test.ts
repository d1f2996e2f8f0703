import { AgentError, type ServerStatus } from "synapse-host-agent/protocol";
import { describe, expect, it } from "vitest";
import { decideStartOutcome, noAnswerText, outcomeOfError } from "./start-outcome";

const status = (state: ServerStatus["state"], pid: number | null, reason: string | null = null): ServerStatus => ({
  id: "alpha",
  state,
  pid,
  port: 9000,
  startedAt: null,
  readyAt: null,
  exitCode: null,
  signal: null,
  reason,
  logPath: null,
  specHash: null,
  logTail: [],
});

describe("outcomeOfError", () => {
  it("tells a failure with its status, a conflict, a link problem and a refusal apart", () => {
    const failed = status("failed", 7, "exited with code 1 while loading");
    expect(outcomeOfError(new AgentError({ code: "FAILED", message: "alpha failed", data: failed }))).toEqual({ outcome: "failed", status: failed, error: "alpha failed" });
    const running = status("ready", 7);
    expect(outcomeOfError(new AgentError({ code: "CONFLICT", message: "older spec", data: running }))).toMatchObject({ outcome: "conflict", status: running });
    expect(outcomeOfError(new AgentError({ code: "TIMEOUT", message: "no answer" }))).toEqual({ outcome: "unreachable", error: "no answer" });
    expect(outcomeOfError(new AgentError({ code: "UNAVAILABLE", message: "link down" }))).toEqual({ outcome: "unreachable", error: "link down" });
    expect(outcomeOfError(new AgentError({ code: "FAILED", message: "llama-server not found" }))).toEqual({ outcome: "refused", error: "llama-server not found" });
    expect(outcomeOfError(new Error("boom"))).toEqual({ outcome: "refused", error: "boom" });
  });

  it("a timeout while the link stayed up is the start's own failure (noAnswer), not an unreachable host; with the link down it is the host's", () => {
    const timeout = new AgentError({ code: "TIMEOUT", message: "host 'mac' did not answer start within 45000 ms" });
    const text = noAnswerText("alpha", "mac", 45_000, 30_000);
    expect(text).toBe("cannot start alpha: the agent on host mac did not answer the start within 45 s (its readiness deadline, 30 s, and a margin) while the link stayed up; the agent may be stuck or the host overloaded: see the agent's log on mac, then start it again (should the server come up meanwhile, its state shows it)");
    expect(outcomeOfError(timeout, { linkUp: true, noAnswerText: text })).toEqual({ outcome: "noAnswer", error: text });
    expect(outcomeOfError(timeout, { linkUp: false, noAnswerText: text })).toEqual({ outcome: "unreachable", error: "host 'mac' did not answer start within 45000 ms" });
    // A link error is the host's whatever the link's state says by the time it is read.
    expect(outcomeOfError(new AgentError({ code: "UNAVAILABLE", message: "link dropped" }), { linkUp: true })).toEqual({ outcome: "unreachable", error: "link dropped" });
  });
});

describe("decideStartOutcome", () => {
  it("ready: record the status, report it", () => {
    const s = status("ready", 7);
    expect(decideStartOutcome({ outcome: "ready", status: s }, { current: true, restart: false })).toEqual({ steps: [{ kind: "record", status: s }], result: { state: "ready", pid: 7, error: null, port: 9000 } });
  });

  it("failed while loading: recorded; a restart that failed is another crash", () => {
    const s = status("failed", 7, "exited with code 1 while loading");
    const user = decideStartOutcome({ outcome: "failed", status: s, error: "e" }, { current: true, restart: false });
    expect(user).toEqual({ steps: [{ kind: "record", status: s }], result: { state: "failed", pid: null, error: "e", port: 9000 } });
    const restart = decideStartOutcome({ outcome: "failed", status: s, error: "e" }, { current: true, restart: true });
    expect(restart.steps).toEqual([{ kind: "record", status: s }, { kind: "crash", why: "exited with code 1 while loading" }]);
  });

  it("refused: failed with the error; a late refusal of an older start (a newer command was accepted) marks nothing", () => {
    expect(decideStartOutcome({ outcome: "refused", error: "no binary" }, { current: true, restart: false })).toEqual({ steps: [{ kind: "markFailed", error: "no binary" }], result: { state: "failed", pid: null, error: "no binary", port: null } });
    expect(decideStartOutcome({ outcome: "refused", error: "no binary" }, { current: true, restart: true }).steps).toEqual([{ kind: "markFailed", error: "no binary" }, { kind: "crash", why: "no binary" }]);
    expect(decideStartOutcome({ outcome: "refused", error: "no binary" }, { current: false, restart: true })).toEqual({ steps: [], result: { state: null, pid: "recorded", error: "no binary", port: null } });
    expect(decideStartOutcome({ outcome: "failed", status: status("failed", 7), error: "e" }, { current: false, restart: true }).steps).toEqual([{ kind: "record", status: status("failed", 7) }]);
  });

  it("no answer with the link up: failed with its error, as a refusal (a restart's counts as a crash); the result is not `unreachable`", () => {
    const user = decideStartOutcome({ outcome: "noAnswer", error: "cannot start alpha: no answer" }, { current: true, restart: false });
    expect(user).toEqual({ steps: [{ kind: "markFailed", error: "cannot start alpha: no answer" }], result: { state: "failed", pid: null, error: "cannot start alpha: no answer", port: null } });
    expect(decideStartOutcome({ outcome: "noAnswer", error: "e" }, { current: true, restart: true }).steps).toEqual([{ kind: "markFailed", error: "e" }, { kind: "crash", why: "e" }]);
    expect(decideStartOutcome({ outcome: "noAnswer", error: "e" }, { current: false, restart: false }).steps).toEqual([]);
  });

  it("unreachable: the error on the row (when current), the state as recorded, the result says the host was not reached; conflict: keeps running, says to restart", () => {
    expect(decideStartOutcome({ outcome: "unreachable", error: "link down" }, { current: true, restart: false })).toEqual({ steps: [{ kind: "noteError", error: "link down" }], result: { state: null, pid: "recorded", error: "link down", port: null, unreachable: true } });
    // A restart after a crash is planned again, not left exited with nothing planned (which the reconciler skips).
    expect(decideStartOutcome({ outcome: "unreachable", error: "link down" }, { current: true, restart: true })).toEqual({ steps: [{ kind: "restartLater", error: "link down" }], result: { state: null, pid: "recorded", error: "link down", port: null, unreachable: true } });
    expect(decideStartOutcome({ outcome: "unreachable", error: "link down" }, { current: false, restart: false }).steps).toEqual([]);
    const c = decideStartOutcome({ outcome: "conflict", status: status("ready", 7), error: "older spec" }, { current: true, restart: false });
    // The port of the process that runs (it keeps its own until restarted), not the registry's.
    expect(c.result).toEqual({ state: "ready", pid: 7, error: "older spec; restart it to apply the current settings", port: 9000 });
  });
});
