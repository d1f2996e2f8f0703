/** What the Playground says beside a greyed-out Send: why the message cannot go, and whether Start fixes it. */
import { describe, expect, it } from "vitest";
import { modelChoice, type PickerRow } from "./model-choice";
import { sendBlock } from "./send-block";

const row = (r: Partial<PickerRow>): PickerRow => ({ modelId: "id", name: "m", host: "local", enabled: true, loadPolicy: "always", state: "stopped", desired: "stopped", lastError: null, link: { kind: "local", state: null, error: null }, ...r });
const held = "cannot start m: port 8081 is held by pid 4242 (node); stop that process, or give this model a free port (its Edit form, or models.update with port), then start it again";

describe("sendBlock", () => {
  it("a failed model, either load policy: where its last error is and what to do, with Start (a fresh user's message went nowhere, with no word)", () => {
    for (const loadPolicy of ["always", "on-demand"]) {
      const choice = modelChoice(row({ loadPolicy, state: "failed", desired: "running", lastError: "crashed 4 times within 10 minutes; last: killed by SIGKILL" }));
      expect(sendBlock(choice)).toEqual({
        text: "Cannot send to m: it failed (its last error is above, under Model). It is not started again until someone starts it: fix what the error says, then start it.",
        start: true,
      });
      // The error is said once, in the state line (a trial saw a long one three times on the page).
      expect(choice?.reason).toBe("last error: crashed 4 times within 10 minutes; last: killed by SIGKILL");
    }
    // An error that already says how to start it again is not told twice.
    expect(sendBlock(modelChoice(row({ state: "failed", desired: "running", lastError: held })))).toEqual({ text: "Cannot send to m: it failed (its last error is above, under Model). It is not started again until someone starts it.", start: true });
    expect(sendBlock(modelChoice(row({ state: "failed", desired: "running" })))).toEqual({ text: "Cannot send to m: it failed. It is not started again until someone starts it.", start: true });
  });

  it("the other states a message cannot go to say why in the state line's words; only a disabled one has no Start", () => {
    expect(sendBlock(modelChoice(row({})))).toEqual({ text: 'Cannot send to m: it is stopped, and its load policy "always" means a message does not start it. Start it to chat.', start: true });
    expect(sendBlock(modelChoice(row({ state: "exited", desired: "running", lastError: "killed by SIGKILL" })))).toEqual({ text: "Cannot send to m: it crashed (its last error is above, under Model), and the app does not restart it (auto-restart is off). Start it to chat.", start: true });
    expect(sendBlock(modelChoice(row({ enabled: false })))).toEqual({ text: "Cannot send to m: it is disabled. Enable it on its model page to use it.", start: false });
    expect(sendBlock(null)).toEqual({ text: "Choose a model first.", start: false });
  });

  it("nothing for a model a message goes to: ready, loading, on demand, restarting after a crash", () => {
    expect(sendBlock(modelChoice(row({ state: "ready", desired: "running" })))).toBeNull();
    expect(sendBlock(modelChoice(row({ state: "starting", desired: "running" })))).toBeNull();
    expect(sendBlock(modelChoice(row({ loadPolicy: "on-demand" })))).toBeNull();
    expect(sendBlock(modelChoice(row({ state: "exited", desired: "running", nextRestartAt: "2026-12-02T04:00:02.000Z" })))).toBeNull();
  });
});
