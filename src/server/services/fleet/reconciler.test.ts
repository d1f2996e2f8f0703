import type { ServerStatus } from "synapse-host-agent/protocol";
import { describe, expect, it } from "vitest";
import { planHost, type ModelFacts } from "./reconciler";

const facts = (name: string, extra: Partial<ModelFacts> = {}): ModelFacts => ({
  modelId: `id-${name}`,
  name,
  desired: "running",
  desiredAt: null,
  observed: "stopped",
  pid: null,
  busy: false,
  nextRestartAt: null,
  ...extra,
});

const status = (id: string, state: ServerStatus["state"], pid: number | null = 100): ServerStatus => ({
  id,
  state,
  pid,
  port: 9000,
  startedAt: null,
  readyAt: null,
  exitCode: null,
  signal: null,
  reason: null,
  logPath: null,
  specHash: null,
  logTail: [],
});

const NOW = 1_000_000;

describe("planHost", () => {
  it("starts what is wanted and not running; leaves running ones alone", () => {
    const plan = planHost([facts("a"), facts("b", { observed: "ready", pid: 100 })], [status("b", "ready")], { firstContact: false, now: NOW });
    expect(plan).toEqual([{ kind: "start", modelId: "id-a" }]);
  });

  it("a Restart recorded while the host was away: made once it is back when the server runs (even at first contact), left to the start when it does not", () => {
    const recorded = { restartRecorded: true, observed: "ready", pid: 100 };
    expect(planHost([facts("a", recorded)], [status("a", "ready")], { firstContact: false, now: NOW })).toEqual([{ kind: "restart", modelId: "id-a" }]);
    expect(planHost([facts("a", recorded)], [status("a", "unhealthy")], { firstContact: true, now: NOW })).toEqual([{ kind: "restart", modelId: "id-a" }]);
    // Not running there any more (the host rebooted): the start it gets is the restart.
    expect(planHost([facts("a", { restartRecorded: true })], [status("a", "stopped", null)], { firstContact: false, now: NOW })).toEqual([{ kind: "start", modelId: "id-a" }]);
    // Stopping, busy, or no longer wanted: not restarted.
    expect(planHost([facts("a", recorded)], [status("a", "stopping")], { firstContact: false, now: NOW })).toEqual([]);
    expect(planHost([facts("a", { ...recorded, busy: true })], [status("a", "ready")], { firstContact: false, now: NOW })).toEqual([]);
    expect(planHost([facts("a", { ...recorded, desired: "stopped" })], [status("a", "ready")], { firstContact: false, now: NOW })).toEqual([{ kind: "stop", modelId: "id-a" }]);
  });

  it("stops what is not wanted but running, unless it is already stopping", () => {
    const plan = planHost(
      [facts("a", { desired: "stopped", observed: "ready" }), facts("b", { desired: "stopped" }), facts("c", { desired: "stopped" })],
      [status("a", "ready"), status("c", "stopping")],
      { firstContact: false, now: NOW },
    );
    expect(plan).toEqual([{ kind: "stop", modelId: "id-a" }]);
  });

  it("on first contact adopts every live server of a known model, wanted or not, and never starts it again", () => {
    const plan = planHost(
      [facts("a", { desired: "running", observed: "ready", pid: 100 }), facts("b", { desired: "stopped", observed: "stopped" }), facts("c", { desired: "running", observed: "starting" })],
      [status("a", "ready", 100), status("b", "ready", 200), status("c", "starting", 300)],
      { firstContact: true, now: NOW },
    );
    expect(plan.map((a) => a.kind)).toEqual(["adopt", "adopt", "adopt"]);
  });

  it("a server we believed running that the agent no longer has is lost (a crash)", () => {
    const plan = planHost([facts("a", { observed: "ready", pid: 4242 }), facts("b", { observed: "starting", pid: 5 })], [status("b", "stopped", null)], { firstContact: true, now: NOW });
    expect(plan).toEqual([
      { kind: "lost", modelId: "id-a", pid: 4242 },
      { kind: "lost", modelId: "id-b", pid: 5 },
    ]);
  });

  it("leaves failed ones alone, resumes a scheduled restart, and does nothing for busy ones", () => {
    const plan = planHost(
      [
        facts("failed", { observed: "failed" }),
        facts("exited", { observed: "exited", nextRestartAt: NOW + 1500 }),
        facts("overdue", { observed: "exited", nextRestartAt: NOW - 10 }),
        facts("noauto", { observed: "exited", nextRestartAt: null }),
        facts("busy", { busy: true, desired: "stopped" }),
      ],
      [status("busy", "ready")],
      { firstContact: false, now: NOW },
    );
    expect(plan).toEqual([
      { kind: "resumeRestart", modelId: "id-exited", delayMs: 1500 },
      { kind: "resumeRestart", modelId: "id-overdue", delayMs: 0 },
    ]);
  });

  it("reports live servers the registry does not know, and does not touch them", () => {
    const plan = planHost([], [status("stranger", "ready"), status("gone", "exited")], { firstContact: false, now: NOW });
    expect(plan).toEqual([{ kind: "unknown", status: status("stranger", "ready") }]);
  });

  it("a stop on the host after the model was last asked to run wins; one before it does not", () => {
    const stoppedOnHost = (id: string, at: number): ServerStatus => ({ ...status(id, "stopped", null), reason: "stopped on the host by stop-metal-servers", hostStoppedAt: new Date(at).toISOString() });
    const plan = planHost(
      [
        facts("a", { desiredAt: NOW - 60_000, observed: "ready", pid: 7 }), // asked to run, then stopped on the host (the app was away)
        facts("b", { desiredAt: NOW - 1_000 }), // started in the app after the host stop: start it
        facts("c", { desiredAt: null }), // no record of when it was asked: the host stop wins
        facts("d", { desired: "stopped", desiredAt: NOW - 60_000 }), // not wanted anyway: nothing to do
      ],
      [stoppedOnHost("a", NOW - 30_000), stoppedOnHost("b", NOW - 30_000), stoppedOnHost("c", NOW - 30_000), stoppedOnHost("d", NOW - 30_000)],
      { firstContact: true, now: NOW },
    );
    expect(plan).toEqual([
      { kind: "hostStopped", modelId: "id-a", at: new Date(NOW - 30_000).toISOString(), reason: "stopped on the host by stop-metal-servers" },
      { kind: "start", modelId: "id-b" },
      { kind: "hostStopped", modelId: "id-c", at: new Date(NOW - 30_000).toISOString(), reason: "stopped on the host by stop-metal-servers" },
    ]);
  });
});
