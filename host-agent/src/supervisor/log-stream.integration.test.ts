/**
 * A log read while the server is writing it, joined with the live log
 * events, is the log: every line once, in order. The real llama-server and
 * tiny model; the lines come from completion requests sent while the tail
 * is read.
 */
import { readFile } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { AgentEvent } from "../protocol.ts";
import { agentOptions, AgentPool, eventRecorder, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort } from "../../test/harness/ports.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";

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

const logLines = (events: AgentEvent[], id: string) =>
  events.flatMap((e) => (e.kind === "log" && e.id === id ? [{ line: e.line, seq: e.seq! }] : []));

describe("log tail + live events", () => {
  it("tails read mid-stream join the events exactly: no line lost, none twice", async () => {
    const agent = pool.make(agentOptions(dirs, bin));
    const rec = eventRecorder(agent);
    const port = await freePort();
    const started = await agent.call("start", { spec: specFor("chatty", model, port) });
    expect(started.state).toBe("ready");

    // Requests make the server log while the tails are read.
    const talk = (async () => {
      for (let i = 0; i < 12; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/completion`, { method: "POST", body: JSON.stringify({ prompt: `hello ${i}`, n_predict: 4 }) });
        await res.text();
      }
    })();
    const reads: { lines: string[]; seq: number; eventsSoFar: number }[] = [];
    const readTails = (async () => {
      for (let i = 0; i < 40; i++) {
        const r = await agent.call("logs", { id: "chatty", lines: 5000 });
        // Every event before the reply has been delivered by now; those after it have not.
        reads.push({ lines: r.lines, seq: r.seq!, eventsSoFar: rec.events.length });
        await new Promise((res) => setTimeout(res, 3));
      }
    })();
    await Promise.all([talk, readTails]);
    await agent.call("stop", { id: "chatty" });
    // The follower hands out what the server wrote last before the file is whole in events too.
    const file = (await readFile(started.logPath!, "utf8")).split("\n").slice(0, -1);
    await expect.poll(() => logLines(rec.events, "chatty").at(-1)?.line, { timeout: 5000 }).toBe(file.at(-1));

    const live = logLines(rec.events, "chatty");
    expect(live.length).toBeGreaterThan(20);
    for (let i = 1; i < live.length; i++) expect(live[i]!.seq).toBeGreaterThan(live[i - 1]!.seq);
    // The events are the file from where the follower started.
    expect(file.slice(-live.length)).toEqual(live.map((l) => l.line));

    let midStream = 0;
    for (const r of reads) {
      const after = live.filter((l) => l.seq > r.seq).map((l) => l.line);
      const joined = [...r.lines, ...after];
      expect(joined).toEqual(file);
      // Every event up to the reply's seq came before the reply (later ones may come before it too; they are kept).
      const before = logLines(rec.events.slice(0, r.eventsSoFar), "chatty");
      expect(before.filter((l) => l.seq <= r.seq).length).toBe(live.filter((l) => l.seq <= r.seq).length);
      if (after.length > 0 && live.some((l) => l.seq <= r.seq)) midStream += 1;
    }
    // Most reads fell while the server was still writing (else this test shows nothing).
    expect(midStream).toBeGreaterThan(reads.length / 2);
  });
});
