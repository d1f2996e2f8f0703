import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { groupMembers, isSameLiveProcess, processInfo, processTable, psProcessInfo } from "./process-table.ts";

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

  it("a background read lets the event loop run between its slices, and lists the same processes", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      const whole = await processTable();
      let done = false;
      let ranDuringRead = false;
      const read = processTable({ background: true, sliceEntries: 1 }).then((t) => {
        done = true;
        return t;
      });
      setImmediate(() => {
        ranDuringRead = !done;
      });
      const sliced = await read;
      // Linux reads in slices; elsewhere one `ps` runs, which never held the loop.
      expect(ranDuringRead).toBe(true);
      for (const pid of [process.pid, child.pid!]) {
        expect(sliced.find((p) => p.pid === pid)).toEqual(whole.find((p) => p.pid === pid));
      }
      expect(sliced.find((p) => p.pid === child.pid)?.ppid).toBe(process.pid);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

// The macOS path (`ps`), run here through procps, which takes the same options: the only place it runs in CI.
describe("process table through ps (the macOS path)", () => {
  it("reads a process's group and start time like the native path does", async () => {
    const viaPs = await psProcessInfo(process.pid);
    const native = await processInfo(process.pid);
    expect(viaPs).toMatchObject({ pid: process.pid, pgid: native!.pgid, zombie: false });
    expect(viaPs!.startToken).toMatch(/^ps:\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}$/);
    expect(Math.abs(Date.parse(viaPs!.startedAt) - Date.parse(native!.startedAt))).toBeLessThan(2000);
  });

  it("answers lookups made together with one ps, each with its own process, null for a pid that is gone", async () => {
    const child = spawn("sleep", ["30"], { detached: true, stdio: "ignore" });
    try {
      const gone = 2 ** 22 + 12345;
      const [me, kid, none, meAgain] = await Promise.all([psProcessInfo(process.pid), psProcessInfo(child.pid!), psProcessInfo(gone), psProcessInfo(process.pid)]);
      expect(me?.pid).toBe(process.pid);
      expect(kid).toMatchObject({ pid: child.pid, pgid: child.pid, zombie: false });
      expect(none).toBeNull();
      expect(meAgain).toEqual(me);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
