import { describe, expect, it } from "vitest";
import { groupMembers, isSameLiveProcess, processInfo } from "./process-table.ts";

describe("process table (this OS)", () => {
  it("reads this process's group and start time", async () => {
    const me = await processInfo(process.pid);
    expect(me).not.toBeNull();
    expect(me?.zombie).toBe(false);
    if (process.platform === "linux") expect(me?.startToken).toMatch(/^linux:\d+$/);
    const startedMs = Date.parse(me!.startedAt);
    const expectedMs = Date.now() - process.uptime() * 1000;
    // btime has 1 s resolution and the clock can drift from it by a little.
    expect(Math.abs(startedMs - expectedMs)).toBeLessThan(5000);
    expect(await isSameLiveProcess(process.pid, me!.startToken)).toBe(true);
    expect(await isSameLiveProcess(process.pid, "linux:1")).toBe(false);
  });

  it("lists the members of a process group and nothing for an empty one", async () => {
    const me = await processInfo(process.pid);
    const members = await groupMembers(me!.pgid);
    expect(members.map((m) => m.pid)).toContain(process.pid);
    expect(await groupMembers(2 ** 22 + 12345)).toEqual([]);
  });

  it("says null for a pid that does not exist", async () => {
    expect(await processInfo(2 ** 22 + 12345)).toBeNull();
  });
});
