/**
 * Two agents on one state folder watching the same real llama-server (the
 * app's agent, and `host-agent stop-metal-servers` or another agent that
 * adopted it): whichever of them sees the end first and removes the record,
 * the other one tells a stop made by the first from a crash. The watcher
 * here polls slowly (an adopted server is not its child), so the other
 * agent has always finished, record removed, before it looks: the order a
 * loaded machine produced at random for the server's own parent.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, eventRecorder, specFor, stateOf, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort } from "../../test/harness/ports.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import { readFile } from "node:fs/promises";
import { RUN_FOOTER_PREFIX, RUN_HEADER_PREFIX } from "../shared/run-header.ts";
import { RecordStore } from "./records.ts";

let dirs: TestDirs;
let model: string;
let bin: string;
const pool = new AgentPool();
beforeAll(async () => {
  bin = llamaServerBin();
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
});
afterEach(() => pool.stopEverything());
afterAll(() => dirs.cleanup());

/** How often the slow watcher looks for the exit: far longer than the other agent's stop or crash handling takes. */
const SLOW_POLL_MS = 1500;

/** A server started by an agent that then went away: the server runs on, and only adopting agents watch it. */
async function orphanServer(id: string) {
  const starter = pool.make(agentOptions(dirs, bin));
  const s = await starter.call("start", { spec: specFor(id, model, await freePort()) });
  starter.close();
  return s;
}

/** The last run's agent lines in the log file: its header, then its last lines (one: the run ended once). */
async function lastRunMarks(logPath: string): Promise<string[]> {
  const lines = (await readFile(logPath, "utf8")).split("\n");
  return lines.slice(lines.findLastIndex((l) => l.startsWith(RUN_HEADER_PREFIX))).filter((l) => l.startsWith("=== synapse host-agent: "));
}

/** Waits until the record of `id` is gone from the state folder (what the other agent does when it is done). */
async function recordRemoved(id: string) {
  const store = new RecordStore(dirs.stateDir);
  await expect.poll(() => store.readNow(id), { timeout: 5000, interval: 20 }).toBe("missing");
}

describe("two agents watching one server", () => {
  it("a stop by the other agent is a stop, even when its record is gone by the time the watcher looks; no health failure on the way", async () => {
    const s = await orphanServer("shared-stop");
    // Probes /health often: a probe refused while the server ends must see the stop, not call it unhealthy.
    const watcher = pool.make(agentOptions(dirs, bin, { exitPollMs: SLOW_POLL_MS, healthIntervalMs: 50, healthTimeoutMs: 2000 }));
    const rec = eventRecorder(watcher);
    // And one that hears of the end only from its exit poll.
    const quiet = pool.make(agentOptions(dirs, bin, { exitPollMs: SLOW_POLL_MS, healthIntervalMs: 60_000 }));
    const quietRec = eventRecorder(quiet);
    await Promise.all([watcher.ready, quiet.ready]);
    for (const a of [watcher, quiet]) expect((await a.call("status", { ids: ["shared-stop"] }))[0]).toMatchObject({ state: "ready", pid: s.pid });

    const cli = pool.make(agentOptions(dirs, bin));
    await cli.ready;
    expect(await cli.call("stop", { id: "shared-stop" })).toMatchObject({ state: "stopped", cause: "requested" });
    await recordRemoved("shared-stop");

    for (const r of [rec, quietRec]) {
      const seen = stateOf(await r.waitFor((e) => stateOf(e)?.id === "shared-stop" && stateOf(e)?.state !== "ready", SLOW_POLL_MS + 5000))!;
      expect(seen).toMatchObject({ state: "stopped", cause: "host-stop", pid: s.pid });
      expect(seen.reason).toMatch(/stopped on the host by another agent/);
    }
    // One last line for the run, the stopping agent's (the watchers saw the same end and add none).
    const marks = await lastRunMarks(s.logPath!);
    expect(marks).toHaveLength(2);
    expect(marks[1]).toMatch(/^=== synapse host-agent: ended shared-stop at \S+: stopped, cause requested: /);
  });

  it("a crash the other agent saw first (and removed the record of) is still a crash", async () => {
    const s = await orphanServer("shared-crash");
    const watcher = pool.make(agentOptions(dirs, bin, { exitPollMs: SLOW_POLL_MS }));
    const rec = eventRecorder(watcher);
    await watcher.ready;
    const other = pool.make(agentOptions(dirs, bin));
    const otherRec = eventRecorder(other);
    await other.ready;
    expect((await other.call("status", { ids: ["shared-crash"] }))[0]).toMatchObject({ state: "ready", pid: s.pid });

    process.kill(s.pid!, "SIGKILL");
    expect(stateOf(await otherRec.waitFor((e) => stateOf(e)?.id === "shared-crash" && stateOf(e)?.state !== "ready", 5000))).toMatchObject({ state: "exited", cause: "crash" });
    await recordRemoved("shared-crash");

    const seen = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "shared-crash" && !["ready", "unhealthy"].includes(stateOf(e)!.state), SLOW_POLL_MS + 5000))!;
    expect(seen).toMatchObject({ state: "exited", cause: "crash", pid: s.pid });
    // The run ended once in its log (the first to see it wrote it), and the slow watcher's evidence is the
    // server's own lines, not that agent line.
    const marks = await lastRunMarks(s.logPath!);
    expect(marks).toHaveLength(2);
    expect(marks[1]).toMatch(/^=== synapse host-agent: ended shared-crash at \S+: exited, cause crash: /);
    expect(seen.logTail.length).toBeGreaterThan(0);
    expect(seen.logTail.filter((l) => l.startsWith(RUN_FOOTER_PREFIX))).toEqual([]);
  });
  it("an end the watcher sees only after the other agent started the server again is not written into the new run", async () => {
    const s = await orphanServer("shared-again");
    const watcher = pool.make(agentOptions(dirs, bin, { exitPollMs: SLOW_POLL_MS, healthIntervalMs: 60_000 }));
    const rec = eventRecorder(watcher);
    await watcher.ready;
    expect((await watcher.call("status", { ids: ["shared-again"] }))[0]).toMatchObject({ state: "ready", pid: s.pid });

    // Another agent stops it and starts it again, on the same log, before the watcher's next look.
    const cli = pool.make(agentOptions(dirs, bin));
    await cli.ready;
    await cli.call("stop", { id: "shared-again" });
    const again = await cli.call("start", { spec: specFor("shared-again", model, s.port!) });
    await rec.waitFor((e) => stateOf(e)?.id === "shared-again" && !["ready", "unhealthy"].includes(stateOf(e)!.state), SLOW_POLL_MS + 5000);

    // The first run ended once, before the second's header; the second run, still running, has no last line.
    const lines = (await readFile(s.logPath!, "utf8")).split("\n").filter((l) => l.startsWith("=== synapse host-agent: "));
    expect(lines.map((l) => (l.startsWith(RUN_HEADER_PREFIX) ? "starting" : "ended"))).toEqual(["starting", "ended", "starting"]);
    expect((await cli.call("status", { ids: ["shared-again"] }))[0]).toMatchObject({ state: "ready", pid: again.pid });
    await cli.call("stop", { id: "shared-again" });
  });
});
