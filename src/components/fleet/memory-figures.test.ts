import { describe, expect, it } from "vitest";
import { memoryFigures } from "./memory-figures";

const GiB = 1024 ** 3;
const size = (b: number) => `${(b / GiB).toFixed(1)} GiB`;
const bar = { host: "mac", budgetBytes: 12 * GiB, usedBytes: 3 * GiB, startAllBytes: 1 * GiB };
const down = { kind: "ssh", state: "disconnected", error: "host 'mac' (me@10.0.0.2:22): connect ECONNREFUSED", unreachableSince: "2026-12-02T09:12:04.000Z" };

describe("memoryFigures", () => {
  it("a reachable host: what its running servers hold by their estimates, of its budget", () => {
    expect(memoryFigures({ ...bar, link: { kind: "ssh", state: "connected", error: null, unreachableSince: null } }, size)).toEqual({
      text: "3.0 GiB estimated for running servers, of 12.0 GiB · start all adds 1.0 GiB · 9.0 GiB left",
      label: "mac: 3.0 GiB estimated for running servers, of 12.0 GiB, start all adds 1.0 GiB",
    });
    // An older app's answer, without the link.
    expect(memoryFigures({ ...bar, budgetBytes: null, startAllBytes: 0 }, size).text).toBe("3.0 GiB estimated for running servers · budget unknown");
  });

  it("a host that cannot be reached: says so, and that the figures are by the last known states (not 'estimated for running servers')", () => {
    const f = memoryFigures({ ...bar, link: down }, size);
    expect(f.text).toBe("host mac cannot be reached: 3.0 GiB estimated for the servers running when last known, of 12.0 GiB · start all adds 1.0 GiB · 9.0 GiB left when last known");
    expect(f.label).toBe("mac: host mac cannot be reached: 3.0 GiB estimated for the servers running when last known, of 12.0 GiB, start all adds 1.0 GiB");
    expect(memoryFigures({ ...bar, budgetBytes: null, link: down }, size).text).toBe("host mac cannot be reached: 3.0 GiB estimated for the servers running when last known · budget unknown");
    expect(f.text).not.toContain("running servers");
  });
});
