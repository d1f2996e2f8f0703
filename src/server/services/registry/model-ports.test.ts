import { describe, expect, it } from "vitest";
import { MAX_MODEL_PORTS, modelPortsSchema, outsideRangeMessage, parseModelPorts, tunnelRange } from "./model-ports";

describe("model ports (a host's range for the gateway's channels)", () => {
  it("reads a range or one port, and refuses the rest with what to write", () => {
    expect(parseModelPorts("8080-8099")).toEqual({ from: 8080, to: 8099 });
    expect(parseModelPorts(" 8080 ")).toEqual({ from: 8080, to: 8080 });
    expect(modelPortsSchema.parse(" 8080-8080 ")).toBe("8080");
    for (const [text, message] of [
      ["8080-", /must be a port range such as 8080-8099/],
      ["9000-8000", /starts above its end \(9000 > 8000\)/],
      ["0-10", /between 1 and 65535/],
      ["65535-65536", /between 1 and 65535/],
      [`1-${MAX_MODEL_PORTS + 1}`, new RegExp(`${MAX_MODEL_PORTS + 1} ports is more than ${MAX_MODEL_PORTS}`)],
      ["8080;id", /must be a port range/],
    ] as const) {
      const r = modelPortsSchema.safeParse(text);
      expect(r.success, text).toBe(false);
      expect(r.error?.issues[0]?.message).toMatch(message);
    }
  });

  it("applies to ssh hosts reached through the tunnel, with a range set", () => {
    expect(tunnelRange({ linkKind: "ssh", upstreamMode: "tunnel", modelPorts: "8080-8081" })).toEqual({ from: 8080, to: 8081 });
    expect(tunnelRange({ linkKind: "ssh", upstreamMode: "direct", modelPorts: "8080-8081" })).toBeNull();
    expect(tunnelRange({ linkKind: "local", upstreamMode: "tunnel", modelPorts: "8080-8081" })).toBeNull();
    expect(tunnelRange({ linkKind: "ssh", upstreamMode: "tunnel", modelPorts: null })).toBeNull();
  });

  it("the refusal names the port, the range, and the setup-ssh.sh range that would include it", () => {
    expect(outsideRangeMessage("mac", 9000, { from: 8080, to: 8099 })).toMatch(/^9000 is outside host mac's model ports 8080-8099: .*--model-ports 8080-9000,/);
  });
});
