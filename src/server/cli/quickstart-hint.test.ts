/** The quick start's closing hint, as a user reads it before npm start: what to do next for the registry as it stands. */
import { describe, expect, it } from "vitest";
import { DISCOVER_HINT, quickstartHint, type RegistryCounts } from "./quickstart-hint";

const counts = (over: Partial<RegistryCounts>): RegistryCounts => ({ models: 0, enabled: 0, enabledOnDemand: 0, stoppedAtShutdown: 0, wantedRunning: 0, wantedRunningAlways: 0, ...over });

describe("quickstartHint", () => {
  it("no model yet: Discover, scan, enable, start", () => {
    expect(quickstartHint(counts({}))).toBe(DISCOVER_HINT);
    expect(DISCOVER_HINT).toBe("then Discover → Scan for models → Enable → START ALL ENABLED");
  });

  it("models registered: how many are enabled, what the last shutdown stopped, and what starts them; no Discover", () => {
    const hint = quickstartHint(counts({ models: 3, enabled: 2, stoppedAtShutdown: 2 }));
    expect(hint).toBe("then: the registry has 3 models, 2 enabled; 2 stopped when the app last shut down: START ALL ENABLED on the fleet page (or npm run synapse -- start-all) starts the 2 enabled");
    expect(hint).not.toContain("Discover");
  });

  it("none enabled: enable first; on-demand models start at their first request; servers left running are resumed", () => {
    expect(quickstartHint(counts({ models: 1 }))).toBe("then: the registry has 1 model, none enabled: turn on Enabled for the models to run (fleet page), then START ALL ENABLED on the fleet page (or npm run synapse -- start-all)");
    expect(quickstartHint(counts({ models: 2, enabled: 2, enabledOnDemand: 1 }))).toMatch(/starts the 1 enabled; the 1 on-demand model starts at its first request$/);
    expect(quickstartHint(counts({ models: 4, enabled: 4, enabledOnDemand: 2 }))).toMatch(/starts the 2 enabled; the 2 on-demand ones start at their first request$/);
    expect(quickstartHint(counts({ models: 2, enabled: 2, enabledOnDemand: 2 }))).toMatch(/: the 2 enabled are on-demand: they start at the first request for them$/);
    expect(quickstartHint(counts({ models: 2, enabled: 2, wantedRunning: 2 }))).toMatch(/; 2 were left running: the app resumes them: /);
    // A trial read "4 were left running: the app resumes them: START ALL ENABLED … starts the 4 enabled": it has nothing to start.
    expect(quickstartHint(counts({ models: 5, enabled: 5, enabledOnDemand: 1, wantedRunning: 4, wantedRunningAlways: 4 }))).toBe(
      "then: the registry has 5 models, 5 enabled; 4 were left running: the app resumes them: nothing to start; the 1 on-demand model starts at its first request",
    );
    expect(quickstartHint(counts({ models: 3, enabled: 3, wantedRunning: 1, wantedRunningAlways: 1 }))).toMatch(/the app resumes it: START ALL ENABLED on the fleet page \(or npm run synapse -- start-all\) starts the other 2 enabled$/);
  });

  it("a registry that cannot be read: the hint for either case, and why", () => {
    expect(quickstartHint(null, "/x/synapse.db: file is not a database")).toBe(
      "then Discover → Scan for models → Enable → START ALL ENABLED; with models registered already, START ALL ENABLED on the fleet page (or npm run synapse -- start-all) starts the enabled ones (the registry could not be read: /x/synapse.db: file is not a database)",
    );
  });
});
