/**
 * A running server's log, written one line per write by another process (as
 * llama-server writes it), wakes the agent's event loop a bounded number of
 * times (AGENT_DEFAULTS.logWatchPauseMs), not once a line, and every line
 * still arrives, in order, without waiting for the watch to finish.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_DEFAULTS } from "../env.ts";
import { LogWatch } from "./log-watch.ts";
import type { Logger } from "./logger.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-log-watch-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const quiet: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Another process appends `count` lines to `file`, one write each, about 1 ms apart (the event loop reads between them). */
function writeLines(file: string, count: number): Promise<void> {
  const src = `const fs=require("node:fs");const fd=fs.openSync(${JSON.stringify(file)},"a");let i=0;const t=setInterval(()=>{fs.writeSync(fd,"line "+i+"\\n");if(++i===${count}){clearInterval(t);fs.closeSync(fd)}},1);`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ["-e", src], { stdio: "inherit" });
    p.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`writer exited ${code}`))));
    p.once("error", reject);
  });
}

async function until(check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return;
    await sleep(10);
  }
}

describe("following a running server's log", () => {
  it("wakes at most once per pause while lines come one write at a time, and hands out every line in order", async () => {
    const file = path.join(dir, "ready.log");
    await writeFile(file, "");
    const got: string[] = [];
    const watch = new LogWatch({ logPath: file, fromOffset: 0, maxBytes: 64 * 1024 * 1024, log: quiet, loading: () => false, onLines: (l) => got.push(...l) });
    try {
      const count = 400;
      const t0 = performance.now();
      await writeLines(file, count);
      const elapsedMs = performance.now() - t0;
      // Every line arrives on its own (the last ones were written while the watch was closed), not at finish().
      await until(() => got.length === count, 5000);
      expect(got).toEqual(Array.from({ length: count }, (_, i) => `line ${i}`));
      // Once a line, this was ~400 wake-ups; now at most one per pause (and the first report).
      expect(watch.reports).toBeGreaterThan(0);
      expect(watch.reports).toBeLessThanOrEqual(Math.ceil(elapsedMs / AGENT_DEFAULTS.logWatchPauseMs) + 2);
    } finally {
      await watch.finish();
    }
  });

  it("while the server loads, reads each write as it comes (one of them says it is ready)", async () => {
    const file = path.join(dir, "loading.log");
    await writeFile(file, "");
    const got: string[] = [];
    const watch = new LogWatch({ logPath: file, fromOffset: 0, maxBytes: 64 * 1024 * 1024, log: quiet, loading: () => true, onLines: (l) => got.push(...l) });
    try {
      await writeLines(file, 50);
      await until(() => got.length === 50, 5000);
      expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `line ${i}`));
      // Not paused: the watch reported the writes as they came (the loop read between them), far more than one per pause.
      expect(watch.reports).toBeGreaterThan(10);
    } finally {
      await watch.finish();
    }
  });
});
