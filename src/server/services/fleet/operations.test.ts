import { describe, expect, it } from "vitest";
import { agentTakesCause } from "./operations";

describe("agentTakesCause: which stop causes an agent's hello features say it accepts", () => {
  it("shutdown only with shutdown-cause: an agent with only stop-with-cause predates it and would refuse the stop", () => {
    expect(agentTakesCause(["stop-with-cause"], "shutdown")).toBe(false);
    expect(agentTakesCause(["stop-with-cause", "shutdown-cause"], "shutdown")).toBe(true);
  });
  it("the other causes with stop-with-cause; none before the agent's hello was read", () => {
    expect(agentTakesCause(["stop-with-cause"], "idle")).toBe(true);
    expect(agentTakesCause([], "evicted")).toBe(false);
    expect(agentTakesCause(null, "idle")).toBe(false);
    expect(agentTakesCause(null, "shutdown")).toBe(false);
  });
});
