/**
 * Whole-log search (log-search.ts): the lines of the rotated copy and the current file that contain a text,
 * the count, the cut at a follower's offsets, and its bounds: a log of tens of MiB is searched without holding
 * the event loop (the agent's followers, and for the local agent the app, share it) or the whole file.
 */
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LogFollower, readLogTail, rotatedPath } from "./log-file.ts";
import { LOG_LINE_MAX_CHARS } from "./log-file.ts";
import { cutAroundMatch, searchLog } from "./log-search.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-log-search-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("searchLog", () => {
  it("a search reads the rotated copy and the file, ignores case, and gives the last matches with how many there were", async () => {
    const log = path.join(dir, "search.log");
    // The copy holds what a tail of the file alone would not show: many lines after the match.
    await writeFile(rotatedPath(log), ["E gguf_init_from_file: failed to open GGUF file", ...Array.from({ length: 3000 }, (_, i) => `I line ${i}`)].join("\n") + "\n");
    await writeFile(log, "I srv  update_slots: all slots are idle\nW a FAILED request\nI done\npartial FAIL");
    expect(await readLogTail(log, 2)).toEqual(["I done", "partial FAIL"]);
    const found = await searchLog(log, "failed", 10);
    expect(found).toEqual({ lines: ["E gguf_init_from_file: failed to open GGUF file", "W a FAILED request"], matches: 2, searchedBytes: expect.any(Number), searchedAll: true });
    expect(found.searchedBytes).toBeGreaterThan(3000 * 7);
    // The last `lines` of the matches; the count is all of them.
    expect(await searchLog(log, "line 29", 3)).toMatchObject({ lines: ["I line 2997", "I line 2998", "I line 2999"], matches: 111 });
    expect(await searchLog(log, "no such words", 10)).toMatchObject({ lines: [], matches: 0 });
    // Bounded: a file longer than the search reads is searched at its end, and the answer says so.
    expect(await searchLog(log, "line", 1, { maxBytes: 1000 })).toMatchObject({ searchedAll: false, searchedBytes: 1000 + (await readFile(log)).length });
  });

  it("a matching line longer than a line is handed out is cut around its match, so the line shown holds the text searched for", async () => {
    const log = path.join(dir, "search-long.log");
    const long = `I srv  prompt: ${"x".repeat(8000)} the NEEDLE here ${"y".repeat(8000)}`;
    const early = `W early needle ${"z".repeat(9000)}`;
    await writeFile(log, `${long}\n${early}\nshort needle\n`);
    const { lines } = await searchLog(log, "needle", 10);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^…x+ the NEEDLE here y+…$/);
    expect(lines[0]!.length).toBe(LOG_LINE_MAX_CHARS + 2);
    // A match inside the first LOG_LINE_MAX_CHARS: cut as a tail's line is, at its end.
    expect(lines[1]).toBe(`${early.slice(0, LOG_LINE_MAX_CHARS)}…`);
    expect(lines[2]).toBe("short needle");
    // At a line's end: the window ends with it, no "…" after.
    expect(cutAroundMatch(`${"a".repeat(9000)}END`, 9000, 3)).toBe(`…${"a".repeat(LOG_LINE_MAX_CHARS - 3)}END`);
  });

  it("a long line whose lower case is longer than it (Turkish İ: two characters in lower case) is still cut around its match", async () => {
    const log = path.join(dir, "search-dotted-i.log");
    // 5000 × "İ" before the match: in lower case the match sits 5000 characters further on than in the line.
    await writeFile(log, `${"İ".repeat(5000)} the NEEDLE here ${"y".repeat(5000)}\n`);
    const { lines } = await searchLog(log, "needle", 10);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^…İ+ the NEEDLE here y+…$/);
  });

  it("a search cut at a follower's offsets leaves what it has not handed out to it", async () => {
    const log = path.join(dir, "search-cut.log");
    await writeFile(log, "match one\nother\n");
    const f = new LogFollower(log, 0, () => undefined);
    await f.poke();
    await appendFile(log, "match two\n");
    const end = () => ({ offset: f.emittedOffset, rotatedOffset: f.emittedRotatedOffset });
    expect((await searchLog(log, "match", 10, { end })).lines).toEqual(["match one"]);
    f.close();
  });

  it("a search while the follower is still in the rotated copy stops where it got to there, and leaves the current file to it", async () => {
    const log = path.join(dir, "search-backlog.log");
    await writeFile(rotatedPath(log), "match a\nmatch b\nmatch c\n");
    await writeFile(log, "match d\n");
    // Handed out: the copy's first two lines ("match a\nmatch b\n" is 16 bytes), nothing of the file.
    const found = await searchLog(log, "match", 10, { end: () => ({ offset: 0, rotatedOffset: 16 }) });
    expect(found).toMatchObject({ lines: ["match a", "match b"], matches: 2, searchedBytes: 16, searchedAll: true });
  });

  it("lines across the chunks it reads are each found once and whole; a window that cuts a line leaves it out", async () => {
    const log = path.join(dir, "search-chunks.log");
    // 2.8 MiB of numbered lines of varied length, so lines straddle every 1 MiB chunk boundary; no rotated copy.
    const all = Array.from({ length: 40_000 }, (_, i) => `I line ${i} ${"é".repeat(i % 61)}`);
    await writeFile(log, `${all.join("\n")}\n`);
    const found = await searchLog(log, "I LINE", 5000);
    expect(found.matches).toBe(all.length);
    expect(found.lines).toEqual(all.slice(-5000));
    expect(await searchLog(log, "line 12345 ", 10)).toMatchObject({ lines: [all[12345]], matches: 1 });
    // The last 100 bytes: the line they begin inside is not searched.
    const bytes = (await readFile(log)).length;
    const window = await searchLog(log, "line", 10, { maxBytes: 100 });
    expect(window.searchedAll).toBe(false);
    expect(window.searchedBytes).toBe(100);
    expect(window.lines.every((l) => all.includes(l))).toBe(true);
    expect(window.matches).toBe(window.lines.length);
    expect(bytes).toBeGreaterThan(2 * 1024 * 1024);
  });

  it("a 48 MiB log whose every line matches: the event loop is never held for long, and only the last lines are kept", async () => {
    const log = path.join(dir, "search-big.log");
    const line = "I srv  update_slots: id  0 | task 1234 | prompt processing progress, n_past = 512, n_tokens = 64\n";
    const count = Math.ceil((48 * 1024 * 1024) / line.length);
    await writeFile(log, line.repeat(count));
    let worst = 0;
    let last = performance.now();
    const tick = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 5);
    try {
      const found = await searchLog(log, "TASK 1234", 3);
      // One more tick: a search that held the loop to its end shows it here.
      await new Promise((r) => setTimeout(r, 30));
      expect(found).toMatchObject({ matches: count, searchedAll: true, searchedBytes: count * line.length });
      expect(found.lines).toEqual([line.trimEnd(), line.trimEnd(), line.trimEnd()]);
      // Read and searched a chunk at a time (a whole-file read held it for 0.25 to 0.5 s here; a chunk takes ~20 ms).
      expect(worst).toBeLessThan(100);
    } finally {
      clearInterval(tick);
      await rm(log);
    }
  }, 60_000);
});
