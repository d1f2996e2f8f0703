/**
 * The agent's `logs` with `grep` (feature log-search) against the real llama-server: a line the server wrote
 * before the last rotation (so in `X.log.1`, and long out of a tail) is found, with the count of all matches,
 * in the order the files hold them, and the search is cut where the live lines take over.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { agentTestBed } from "../../test/harness/agent-test-bed.ts";
import { agentHas } from "../protocol.ts";
import { agentOptions, specFor } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort } from "../../test/harness/ports.ts";
import { rotatedPath } from "./log-file.ts";

const bed = agentTestBed();

describe("log search", () => {
  it("finds a run's lines after rotations moved them out of the current file, with how many matched", async () => {
    // A small cap: each run of the tiny model writes more than this, so the file rotates every run or two.
    const agent = bed.pool.make(agentOptions(bed.dirs, llamaServerBin(), { logMaxBytes: 2 * 1024 }));
    expect(agentHas(await agent.call("hello", { protocolVersion: 1 }), "log-search")).toBe(true);
    const port = await freePort();
    let logPath = "";
    for (let run = 0; run < 6 && !(logPath && existsSync(rotatedPath(logPath))); run++) {
      logPath = (await agent.call("start", { spec: specFor("searched", bed.model, port) })).logPath!;
      await agent.call("stop", { id: "searched" });
    }
    expect(existsSync(rotatedPath(logPath)), "the log rotated").toBe(true);
    // The last run's follower finishes after its stop has answered, and its last read may rotate the file once
    // more: the files are read once they have stayed the same for 200 ms (at most 10 s).
    const files = async () => [await readFile(rotatedPath(logPath), "utf8"), await readFile(logPath, "utf8")] as const;
    let seen = await files();
    for (let still = 0, tries = 0; still < 2 && tries < 100; tries++) {
      await new Promise((r) => setTimeout(r, 100));
      const now = await files();
      still = now[0] === seen[0] && now[1] === seen[1] ? still + 1 : 0;
      seen = now;
    }
    const copy = seen[0].split("\n");
    const current = seen[1].split("\n");
    // Every run's header, in both files, oldest first: what the search must find.
    const headers = [...copy, ...current].filter((l) => l.startsWith("=== synapse host-agent: starting searched at "));
    // One at least is in the rotated copy: out of the current file, where a tail reads first.
    expect(copy.filter((l) => headers.includes(l)).length, "a header in the copy").toBeGreaterThanOrEqual(1);
    expect([...copy, ...current].some((l) => l.includes("llama")), "the server's own lines in the files").toBe(true);

    const found = await agent.call("logs", { id: "searched", lines: 50, grep: "SYNAPSE HOST-AGENT: STARTING" });
    expect(found.lines).toEqual(headers);
    expect(found.matches).toBe(headers.length);
    expect(found.searchedAll).toBe(true);
    expect(found.searchedBytes).toBe(copy.join("\n").length + current.join("\n").length);
    // `lines` bounds what comes back, not the count.
    const ends = await agent.call("logs", { id: "searched", lines: 1, grep: "synapse host-agent: ended searched" });
    expect(ends.matches).toBeGreaterThanOrEqual(1);
    expect(ends.lines).toHaveLength(1);
    expect(ends.lines[0]).toBe([...copy, ...current].filter((l) => l.includes("synapse host-agent: ended searched")).at(-1));
    // The same call without grep is still the tail, without the search's fields.
    const tail = await agent.call("logs", { id: "searched", lines: 3 });
    expect(tail.lines).toEqual(current.filter((l) => l !== "").slice(-3));
    expect(tail.matches).toBeUndefined();
  });

  it("a grep of a server with no log is refused as the tail is, saying which file is missing", async () => {
    const agent = bed.pool.make(agentOptions(bed.dirs, llamaServerBin()));
    await expect(agent.call("logs", { id: "never-ran", lines: 10, grep: "x" })).rejects.toThrow(/no log for server never-ran \(.*never-ran\.log does not exist\)/);
  });
});
