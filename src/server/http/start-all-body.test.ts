import { describe, expect, it } from "vitest";
import { startAllResponse } from "./start-all-body";

const r = (name: string, state: string) => ({ name, state });

describe("start-all's counts", () => {
  it("counts what started, not attempts: 3 ready and 2 failed is started 3, failed 2, status 207", () => {
    const results = [r("a", "ready"), r("b", "failed"), r("c", "ready"), r("d", "exited"), r("e", "ready")];
    expect(startAllResponse(results, true)).toEqual({ status: 207, body: { ok: false, started: 3, failed: 2, results } });
  });

  it("all ready is 200; without waiting, starting servers count as started and the status is 202", () => {
    expect(startAllResponse([r("a", "ready")], true)).toMatchObject({ status: 200, body: { ok: true, started: 1, failed: 0 } });
    expect(startAllResponse([r("a", "starting"), r("b", "failed")], false)).toMatchObject({ status: 202, body: { ok: false, started: 1, failed: 1 } });
  });
  it("names the enabled on-demand models it left alone, and only when there are some", () => {
    expect(startAllResponse([r("a", "ready")], true, ["lazy", "later"]).body).toEqual({ ok: true, started: 1, failed: 0, onDemand: ["lazy", "later"], results: [r("a", "ready")] });
    expect(startAllResponse([r("a", "ready")], true, []).body).not.toHaveProperty("onDemand");
  });
  it("a crashed model left to the restart its policy planned (restartAt) is counted restarting, not failed", () => {
    const results = [r("a", "ready"), { name: "b", state: "exited", restartAt: "2026-12-02T06:00:04.000Z" }];
    expect(startAllResponse(results, true)).toMatchObject({ status: 200, body: { ok: true, started: 1, failed: 0, restarting: 1 } });
    expect(startAllResponse([r("a", "ready")], true).body).not.toHaveProperty("restarting");
  });
  it("says how many of those it counts as started were already running (memory verdict running), only when some were", () => {
    const results = [{ name: "a", state: "ready", memory: { verdict: "running" } }, { name: "b", state: "ready", memory: { verdict: "fits" } }, { name: "c", state: "failed", memory: { verdict: "running" } }];
    expect(startAllResponse(results, true).body).toMatchObject({ started: 2, alreadyRunning: 1, failed: 1 });
    expect(startAllResponse([{ name: "b", state: "ready", memory: { verdict: "fits" } }], true).body).not.toHaveProperty("alreadyRunning");
  });
});
