import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import type { Logger } from "./logger.ts";
import { linuxTreeTable, processInfo, procfs, type ProcReader, type TableEntry } from "./process-table.ts";
import { Descendants, TreeScanner } from "./process-tree.ts";

const row = (pid: number, ppid: number, pgid: number, start: number, zombie = false): TableEntry => ({
  pid, ppid, pgid, zombie, startToken: `linux:${start}`,
});

describe("Descendants", () => {
  it("follows children of any depth and any group, and keeps them after their parent dies", () => {
    const tree = new Descendants({ pid: 100, startToken: "linux:50" }, "SYNAPSE_SERVER_RUN=x");
    tree.observe([row(1, 0, 1, 1), row(100, 1, 100, 50), row(101, 100, 101, 60), row(102, 101, 102, 61), row(200, 1, 200, 70)]);
    expect(tree.list().map((p) => p.pid).sort()).toEqual([101, 102]);
    // 101 exited; 102 (in its own session) was reparented to init: still ours.
    tree.observe([row(1, 0, 1, 1), row(100, 1, 100, 50), row(102, 1, 102, 61)]);
    expect(tree.list().map((p) => p.pid)).toEqual([102]);
  });

  it("members of the server's group that started after it are ours; a reused pid is not", () => {
    const tree = new Descendants({ pid: 100, startToken: "linux:50" }, "SYNAPSE_SERVER_RUN=x");
    tree.observe([row(100, 1, 100, 50), row(103, 1, 100, 55), row(104, 1, 100, 40)]);
    expect(tree.list().map((p) => p.pid)).toEqual([103]);
    // 103's pid now names another process (another start time): dropped, never signalled.
    tree.observe([row(100, 1, 100, 50), row(103, 1, 300, 90)]);
    expect(tree.list()).toEqual([]);
  });

  it("zombies are not tracked", () => {
    const tree = new Descendants({ pid: 100, startToken: "linux:50" }, "SYNAPSE_SERVER_RUN=x");
    tree.observe([row(100, 1, 100, 50), row(101, 100, 101, 60, true)]);
    expect(tree.list()).toEqual([]);
  });
});

/** A /proc/[pid]/stat line as the kernel writes it: starttime is the 22nd field. */
const statLine = (pid: number, ppid: number, pgid: number, start: number, state = "S") =>
  `${pid} (llama server) ${state} ${ppid} ${pgid} ${[pgid, ...Array<number>(15).fill(0)].join(" ")} ${start} 0 0\n`;

/** A /proc made of stat lines and children files, counting what is read. */
function fakeProc(procs: { pid: number; ppid: number; pgid: number; start: number; tasks?: Record<number, number[]> }[]) {
  const reads: string[] = [];
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const reader: ProcReader = {
    stat(pid) {
      reads.push(`stat ${pid}`);
      const p = byPid.get(pid);
      return p ? statLine(p.pid, p.ppid, p.pgid, p.start) : null;
    },
    tasks(pid) {
      const p = byPid.get(pid);
      return p ? Object.keys(p.tasks ?? { [pid]: [] }).map(Number) : null;
    },
    children(pid, tid) {
      reads.push(`children ${pid}/${tid}`);
      const kids = byPid.get(pid)?.tasks?.[tid];
      return kids ? kids.map((k) => `${k} `).join("") : byPid.has(pid) ? "" : null;
    },
  };
  return { reader, reads };
}

describe("linuxTreeTable", () => {
  it("reads the roots and what they started, through every thread's children file, each process once", () => {
    // 100's second thread (tid 105) forked 120; 120 forked 130. 300 is another program.
    const { reader, reads } = fakeProc([
      { pid: 100, ppid: 1, pgid: 100, start: 50, tasks: { 100: [110], 105: [120] } },
      { pid: 110, ppid: 100, pgid: 100, start: 60 },
      { pid: 120, ppid: 105, pgid: 120, start: 61, tasks: { 120: [130] } },
      { pid: 130, ppid: 120, pgid: 130, start: 62 },
      { pid: 300, ppid: 1, pgid: 300, start: 70 },
    ]);
    const table = linuxTreeTable([{ pid: 100, startToken: "linux:50" }, { pid: 130, startToken: "linux:62" }], reader);
    expect(table.map((p) => p.pid).sort()).toEqual([100, 110, 120, 130]);
    expect(table.find((p) => p.pid === 120)).toEqual({ pid: 120, ppid: 105, pgid: 120, zombie: false, startToken: "linux:61" });
    expect(reads.filter((r) => r.startsWith("stat")).sort()).toEqual(["stat 100", "stat 110", "stat 120", "stat 130"]);
  });

  it("a root whose pid now names another process is returned but not followed, and Descendants drops it", () => {
    const tree = new Descendants({ pid: 100, startToken: "linux:50" }, "SYNAPSE_SERVER_RUN=x");
    tree.observe([row(100, 1, 100, 50), row(101, 100, 101, 60)]);
    // 101 ended; its pid now names a process started later, which has a child of its own.
    const { reader, reads } = fakeProc([
      { pid: 100, ppid: 1, pgid: 100, start: 50 },
      { pid: 101, ppid: 1, pgid: 101, start: 90, tasks: { 101: [102] } },
      { pid: 102, ppid: 101, pgid: 101, start: 91 },
    ]);
    tree.observe(linuxTreeTable(tree.roots(), reader));
    expect(tree.list()).toEqual([]);
    expect(reads).not.toContain("stat 102");
  });
});

// Real processes: a leader that forks a child that forks a grandchild in a
// session of its own (setsid: outside the leader's group, like a helper a
// server might start). Each exits on its own after a minute.
const GRANDCHILD = "setTimeout(() => {}, 60_000)";
const CHILD = `const g = require("node:child_process").spawn(process.execPath, ["-e", ${JSON.stringify(GRANDCHILD)}], { detached: true, stdio: "ignore" });
process.stdout.write(JSON.stringify({ child: process.pid, grandchild: g.pid }) + "\\n");
setTimeout(() => {}, 60_000);`;
const LEADER = `require("node:child_process").spawn(process.execPath, ["-e", ${JSON.stringify(CHILD)}], { stdio: ["ignore", "inherit", "inherit"] });
setTimeout(() => {}, 60_000);`;

interface RealTree {
  leader: ChildProcess;
  tree: Descendants;
  child: number;
  grandchild: number;
  end(): void;
}

async function realTree(): Promise<RealTree> {
  const leader = spawn(process.execPath, ["-e", LEADER], { stdio: ["ignore", "pipe", "inherit"] });
  const pids: number[] = [leader.pid!];
  const end = () => {
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  };
  try {
    const lines = createInterface({ input: leader.stdout! });
    const line = await Promise.race([
      new Promise<string>((resolve) => lines.once("line", resolve)),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the test's process tree did not say its pids within 10 s")), 10_000).unref()),
    ]);
    const { child, grandchild } = JSON.parse(line) as { child: number; grandchild: number };
    pids.push(child, grandchild);
    const info = await processInfo(leader.pid!);
    if (!info) throw new Error(`the test's leader (pid ${leader.pid}) exited before it was read`);
    return { leader, tree: new Descendants({ pid: leader.pid!, startToken: info.startToken }, "SYNAPSE_SERVER_RUN=test"), child, grandchild, end };
  } catch (err) {
    end();
    throw err;
  }
}

/** Scans until `done` holds, at most `deadlineMs`. */
async function scanUntil(scanner: TreeScanner, done: () => boolean, deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    await scanner.scan();
    if (done() || Date.now() >= until) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const pidsOf = (tree: Descendants) => tree.list().map((p) => p.pid).sort((a, b) => a - b);

describe.runIf(process.platform === "linux")("TreeScanner on Linux", () => {
  it("finds a real tree, and keeps a grandchild whose parent exited after it was seen until it ends", async () => {
    const t = await realTree();
    const scanner = new TreeScanner(0, silent);
    try {
      scanner.add(t.tree);
      await scanUntil(scanner, () => t.tree.has(t.grandchild), 5000);
      expect(pidsOf(t.tree)).toEqual([t.child, t.grandchild].sort((a, b) => a - b));
      // The child exits: the grandchild is orphaned, out of the leader's tree and group.
      process.kill(t.child, "SIGKILL");
      await scanUntil(scanner, () => !t.tree.has(t.child), 5000);
      expect(pidsOf(t.tree)).toEqual([t.grandchild]);
      await scanner.scan();
      expect(pidsOf(t.tree)).toEqual([t.grandchild]);
      process.kill(t.grandchild, "SIGKILL");
      await scanUntil(scanner, () => !t.tree.has(t.grandchild), 5000);
      expect(pidsOf(t.tree)).toEqual([]);
    } finally {
      scanner.close();
      t.end();
    }
  });

  it("a scan reads the stat of the tree's processes only, not of every process on the machine", async () => {
    const t = await realTree();
    const statRead: number[] = [];
    const counting: ProcReader = { ...procfs, stat: (pid) => (statRead.push(pid), procfs.stat(pid)) };
    const scanner = new TreeScanner(0, silent, { reader: counting });
    try {
      scanner.add(t.tree);
      await scanUntil(scanner, () => t.tree.has(t.grandchild), 5000);
      statRead.length = 0;
      await scanner.scan();
      expect(pidsOf(t.tree)).toEqual([t.child, t.grandchild].sort((a, b) => a - b));
      expect(statRead.sort((a, b) => a - b)).toEqual([t.leader.pid!, t.child, t.grandchild].sort((a, b) => a - b));
      expect(readdirSync("/proc").filter((n) => /^\d+$/.test(n)).length).toBeGreaterThan(statRead.length);
    } finally {
      scanner.close();
      t.end();
    }
  });

  it("without children files (CONFIG_PROC_CHILDREN unset) it reads the whole table, and says so once", async () => {
    const t = await realTree();
    const said: string[] = [];
    const log: Logger = { ...silent, info: (m) => void said.push(m), warn: (m) => void said.push(m) };
    const noChildren: ProcReader = { ...procfs, children: () => null };
    const scanner = new TreeScanner(0, log, { reader: noChildren });
    try {
      scanner.add(t.tree);
      await scanUntil(scanner, () => t.tree.has(t.grandchild), 5000);
      await scanner.scan();
      expect(pidsOf(t.tree)).toEqual([t.child, t.grandchild].sort((a, b) => a - b));
      // Found although no children file could be read: the whole table was read, and the log said why, once.
      expect(said).toEqual([expect.stringMatching(/no \/proc\/<pid>\/task\/<tid>\/children .*CONFIG_PROC_CHILDREN.*whole process table/)]);
    } finally {
      scanner.close();
      t.end();
    }
  });
});
