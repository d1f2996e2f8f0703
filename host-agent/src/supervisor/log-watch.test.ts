/**
 * A running server's log, written one line per write by another process (as
 * llama-server writes it), wakes the agent's event loop a bounded number of
 * times (AGENT_DEFAULTS.logWatchPauseMs), not once a line, and every line
 * still arrives, in order, without waiting for the watch to finish.
 */
import { spawn } from "node:child_process";
import { closeSync, fstatSync, openSync, writeSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_DEFAULTS } from "../env.ts";
import { LOG_READ_BEHIND_NOTE } from "./log-file.ts";
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

  it("keeps the cap while lines are written faster than they are read, and accounts for every byte written", async () => {
    const file = path.join(dir, "faster.log");
    await writeFile(file, "");
    const cap = 256 * 1024;
    const fd = openSync(file, "a");
    // The "server": 96 KiB more (983 lines of 100 bytes) each time the watch hands out lines, which it reads
    // 64 KiB at a time: the writer stays ahead until it has written 8 MiB.
    const target = 8 * 1024 * 1024;
    let written = 0;
    let next = 0;
    let largest = 0;
    const write = () => {
      let chunk = "";
      for (let k = 0; k < 983; k++) chunk += `line ${String(next++).padStart(8, "0")} ${"x".repeat(85)}\n`;
      writeSync(fd, chunk);
      written += chunk.length;
      largest = Math.max(largest, fstatSync(fd).size);
    };
    write();
    const got: string[] = [];
    const watch = new LogWatch({
      logPath: file, fromOffset: 0, maxBytes: cap, log: quiet, loading: () => false,
      onLines: (lines) => {
        got.push(...lines);
        if (written < target) write();
      },
    });
    try {
      await until(() => written >= target, 20_000);
      expect(written).toBeGreaterThanOrEqual(target);
    } finally {
      await watch.finish();
      closeSync(fd);
    }
    // Rotated as it grew (before, the rotation waited for the reader to catch up: the file reached 8 MiB).
    expect(largest).toBeLessThanOrEqual(cap + AGENT_DEFAULTS.logCapSlackBytes + 2 * 98_300);
    // Each line once, in order; what the reader could not keep is said, to the byte.
    const notes = got.filter((l) => l.startsWith(LOG_READ_BEHIND_NOTE));
    const lines = got.filter((l) => !l.startsWith(LOG_READ_BEHIND_NOTE));
    const numbers = lines.map((l) => Number(l.slice(5, 13)));
    expect(numbers.every((n, i) => i === 0 || n > numbers[i - 1]!)).toBe(true);
    const dropped = notes.reduce((sum, l) => sum + Number(/: (\d+) bytes/.exec(l)![1]), 0);
    expect(lines.length * 100 + dropped).toBe(written);
    expect(lines.length).toBeGreaterThan(0);
  });
});
