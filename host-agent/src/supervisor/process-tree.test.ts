import { describe, expect, it } from "vitest";
import type { TableEntry } from "./process-table.ts";
import { Descendants } from "./process-tree.ts";

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

