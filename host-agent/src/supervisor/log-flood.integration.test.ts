/**
 * Issue 14 item 5: a server that writes 20 MB/s of log (stand-in-floods-log)
 * keeps its log file within the cap plus the stated margin (log-watch.ts:
 * the slack, and what the server writes before the agent checks and rotates,
 * including while the agent is held up), measured by a separate process that
 * stats the file every 2 ms; and its live log events stay within the rate
 * bound (live-log-gate.ts), with a note saying how many lines were skipped.
 *
 * How long the agent was held up is measured, not assumed: the agent runs in
 * this thread, and its event loop's longest delay (monitorEventLoopDelay)
 * covers a rotation that waits for a busy disk, a GC pause and the scheduler
 * keeping this process off its cores. Under CI's load a rotation's copy waited
 * long enough for the file to reach 16.8 MB; a cap kept only by the 1 s timer,
 * or not at all, still exceeds the bound on a quiet machine by megabytes.
 */
import { spawn } from "node:child_process";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AGENT_DEFAULTS } from "../env.ts";
import { agentOptions, AgentPool, eventRecorder, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { freePort } from "../../test/harness/ports.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";

let dirs: TestDirs;
let model: string;
const pool = new AgentPool();
beforeAll(async () => {
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
});
afterEach(() => pool.stopEverything());
afterAll(() => dirs.cleanup());

const MiB = 1024 * 1024;

/** The largest size `file` had, sampled every 2 ms by another process for `ms`. */
function largestSize(file: string, ms: number): Promise<number> {
  const src = `const fs=require("node:fs");let max=0;const end=Date.now()+${ms};const t=setInterval(()=>{try{max=Math.max(max,fs.statSync(${JSON.stringify(file)}).size)}catch{}if(Date.now()>end){clearInterval(t);process.stdout.write(String(max))}},2);`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["-e", src], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => (out += c.toString()));
    p.once("exit", () => resolve(Number(out)));
    p.once("error", reject);
  });
}

describe("a server that floods its log", () => {
  it("keeps the file within its cap plus what it writes before the agent checks, and sends a bounded rate of live lines with a skipped-lines note", async () => {
    const cap = 2 * MiB;
    const agent = pool.make(agentOptions(dirs, standIns.floodsLog, { logMaxBytes: cap }));
    const rec = eventRecorder(agent);
    const t0 = performance.now();
    const s = await agent.call("start", { spec: specFor("flood", model, await freePort(), { alias: "2", stopGraceMs: 300 }) });
    const loopDelay = monitorEventLoopDelay({ resolution: 2 });
    loopDelay.enable();
    const largest = await largestSize(s.logPath!, 2500);
    loopDelay.disable();
    const elapsedS = (performance.now() - t0) / 1000;
    await agent.call("stop", { id: "flood" });
    expect(largest).toBeGreaterThan(cap / 2); // it did write
    // The stand-in's 20 MB/s, over the time between two checks (the watch's pause, and the longest hold-up) and a
    // rotation's (at most the longest hold-up: it is one synchronous step), plus 1 MiB (50 ms) for timers' slop.
    const heldUpS = loopDelay.max / 1e9;
    const bound = cap + AGENT_DEFAULTS.logCapSlackBytes + 20e6 * (AGENT_DEFAULTS.logWatchPauseMs / 1000 + 2 * heldUpS) + MiB;
    expect(largest, `largest ${largest} bytes; the agent's loop was held up for ${(heldUpS * 1000).toFixed(0)} ms at most`).toBeLessThanOrEqual(bound);
    const lines = rec.events.flatMap((e) => (e.kind === "log" && e.id === "flood" ? [e.line] : []));
    const notes = lines.filter((l) => /^\[synapse host-agent\] \d+ log lines? skipped here/.test(l));
    const skipped = notes.reduce((n, l) => n + Number(/\] (\d+) log/.exec(l)![1]), 0);
    expect(notes.length).toBeGreaterThan(0);
    // Each note says where the skipped lines are.
    for (const n of notes) expect(n.endsWith(`the log file has them (${s.logPath})`), n).toBe(true);
    expect(lines.length - notes.length).toBeLessThanOrEqual(AGENT_DEFAULTS.liveLogBurstLines + AGENT_DEFAULTS.liveLogLinesPerSecond * Math.ceil(elapsedS + 1));
    // The flood wrote ~40 MB of 100-byte lines: nearly all of them were counted, not sent.
    expect(skipped).toBeGreaterThan(100_000);
  });
});
