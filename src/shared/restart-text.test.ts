import { describe, expect, it } from "vitest";
import { restartPlanned, restartText } from "./restart-text";

describe("restartText", () => {
  const crashed = { state: "exited", nextRestartAt: "2026-12-02T04:00:02.000Z" };
  const at = (iso: string) => Date.parse(iso);
  it("counts down to a crashed server's planned restart: tenths for the CLI, whole seconds rounded up for the page", () => {
    expect(restartText(crashed, at("2026-12-02T04:00:00.600Z"))).toBe("restart in 1.4 s");
    expect(restartText(crashed, at("2026-12-02T04:00:00.600Z"), true)).toBe("restart in 2 s");
    expect(restartText(crashed, at("2026-12-02T04:00:01.990Z"), true)).toBe("restart in 1 s");
    expect(restartText(crashed, at("2026-12-02T04:00:02.500Z"), true)).toBe("restart due");
  });
  it("says nothing for a server that is not crashed, or has no restart planned", () => {
    expect(restartText({ ...crashed, state: "ready" }, 0)).toBe("");
    expect(restartText({ ...crashed, nextRestartAt: null }, 0)).toBe("");
  });
  it("a restart is planned for a crashed server with its due time, also once due; not for a failed one", () => {
    expect(restartPlanned(crashed)).toBe(true);
    expect(restartPlanned({ ...crashed, nextRestartAt: null })).toBe(false);
    expect(restartPlanned({ ...crashed, state: "failed" })).toBe(false);
  });
});
