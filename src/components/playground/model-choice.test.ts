import { describe, expect, it } from "vitest";
import { choicesByHost, modelChoice, type PickerRow } from "./model-choice";

const row = (r: Partial<PickerRow>): PickerRow => ({ modelId: "id", name: "m", host: "local", enabled: true, loadPolicy: "always", state: "stopped", desired: "stopped", lastError: null, link: { kind: "local", state: null, error: null }, ...r });

describe("modelChoice", () => {
  it("a disabled model is listed with the reason it cannot be picked", () => {
    expect(modelChoice(row({ enabled: false, state: "ready" }))).toMatchObject({ pickable: false, readiness: "disabled", reason: expect.stringMatching(/enable it on its model page/) });
  });

  it("an idle on-demand model loads on the first message; a stopped always model must be started", () => {
    expect(modelChoice(row({ loadPolicy: "on-demand" }))).toMatchObject({ pickable: true, readiness: "on-demand", display: "idle" });
    expect(modelChoice(row({}))).toMatchObject({ pickable: true, readiness: "needs-start", note: "stopped, start it to chat" });
    expect(modelChoice(row({ state: "failed", lastError: "bad file\nmore" }))).toMatchObject({ readiness: "needs-start", reason: "last error: bad file" });
  });

  it("a failed on-demand model must be started too: a message does not load it (the gateway answers 503 model_failed)", () => {
    // Its state line read "Not loaded: your first message loads it", with no Start, above a message the gateway could only refuse.
    expect(modelChoice(row({ loadPolicy: "on-demand", state: "failed", desired: "running", lastError: "exited with code 1 while loading" }))).toMatchObject({ pickable: true, readiness: "needs-start", note: "failed, start it to chat", reason: "last error: exited with code 1 while loading" });
  });

  it("loading and ready models answer; a host that is down says so", () => {
    expect(modelChoice(row({ state: "starting", desired: "running" })).readiness).toBe("loading");
    expect(modelChoice(row({ state: "stopped", desired: "running" })).readiness).toBe("loading");
    expect(modelChoice(row({ state: "ready", desired: "running" })).readiness).toBe("ready");
    expect(modelChoice(row({ state: "ready", link: { kind: "ssh", state: "reconnecting", error: "connection refused" }, host: "mac" })).reason).toBe("host mac is not reachable: connection refused");
  });

  it("a crashed model whose restart is planned is restarting, pickable, for either policy; with none planned it must be started", () => {
    // A trial read "crashed, start it to chat" and a Start button through the whole backoff of a restart the app made.
    for (const loadPolicy of ["always", "on-demand"]) {
      expect(modelChoice(row({ loadPolicy, state: "exited", desired: "running", nextRestartAt: "2026-12-02T03:00:04.000Z", lastError: "killed by SIGKILL" }))).toMatchObject({ pickable: true, readiness: "restarting", note: "crashed, restarting", reason: "last error: killed by SIGKILL" });
    }
    expect(modelChoice(row({ state: "exited", desired: "running", nextRestartAt: null })).readiness).toBe("needs-start");
    // On demand too: the gateway answers 503 model_failed ("exited") to its message, it does not load it.
    expect(modelChoice(row({ loadPolicy: "on-demand", state: "exited", desired: "running", nextRestartAt: null, lastError: "killed by SIGKILL" }))).toMatchObject({ readiness: "needs-start", note: "crashed, start it to chat" });
  });

  it("groups by host, hosts and models by name", () => {
    const groups = choicesByHost([row({ name: "b", host: "z" }), row({ name: "c", host: "a" }), row({ name: "a", host: "z" })]);
    expect(groups.map((g) => [g.host, g.choices.map((c) => c.name)])).toEqual([["a", ["c"]], ["z", ["a", "b"]]]);
  });
});
