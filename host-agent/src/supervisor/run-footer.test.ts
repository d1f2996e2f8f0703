import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appNote, RUN_HEADER_PREFIX, runFooter } from "../shared/run-header.ts";
import { appendRunFooter, runEndInLog } from "./run-footer.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-footer-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A run's header as spawn-prep.ts writes it, just before the spawn at `spawnedAt`. */
const header = (id: string, at: string) => `${RUN_HEADER_PREFIX}${id} at ${at}: /opt/llama-server --model /m/a.gguf ===`;
const footer = (id: string, reason: string) => runFooter(id, new Date("2026-12-01T12:00:05Z"), "stopped", "requested", reason);
const marks = async (log: string) => (await readFile(log, "utf8")).split("\n").filter((l) => l.startsWith("=== ")).map((l) => (l.startsWith(RUN_HEADER_PREFIX) ? "starting" : l.slice(-9)));

describe("a run's last line, once per run, in its own run", () => {
  it("written after the run's header and the server's lines; a second end of the same run adds none; the next run gets its own", async () => {
    const log = path.join(dir, "a.log");
    await writeFile(log, `${header("a", "2026-12-01T12:00:00.000Z")}\nI main: loading model\n`);
    const spawnedAt = "2026-12-01T12:00:00.004Z";
    expect(runEndInLog(log, spawnedAt)).toBe("open");
    expect(appendRunFooter(log, footer("a", "first"), spawnedAt)).toBe("written");
    expect(runEndInLog(log, spawnedAt)).toBe("ended");
    // Another agent that saw the same end.
    expect(appendRunFooter(log, footer("a", "second"), spawnedAt)).toBe("ended");
    await writeFile(log, `${header("a", "2026-12-01T12:01:00.000Z")}\nI main: loading model\n`, { flag: "a" });
    expect(appendRunFooter(log, footer("a", "third"), "2026-12-01T12:01:00.002Z")).toBe("written");
    expect(await marks(log)).toEqual(["starting", "first ===", "starting", "third ==="]);
  });

  it("a server killed in the middle of a line: the run's last line still stands on a line of its own, and counts as its end", async () => {
    // A CI run found the footer glued to llama-server's "0.00.017.568 I " (its line's start, the rest never written).
    const log = path.join(dir, "cut.log");
    await writeFile(log, `${header("a", "2026-12-01T12:00:00.000Z")}\nI main: loading model\n0.00.017.568 I `);
    const spawnedAt = "2026-12-01T12:00:00.004Z";
    expect(appendRunFooter(log, footer("a", "first"), spawnedAt)).toBe("written");
    const lines = (await readFile(log, "utf8")).split("\n");
    expect(lines.slice(-3)).toEqual(["0.00.017.568 I ", footer("a", "first"), ""]);
    expect(appendRunFooter(log, footer("a", "second"), spawnedAt)).toBe("ended");
  });

  it("an end seen after another agent started the server again is not written into that later run", async () => {
    const log = path.join(dir, "later.log");
    // The run spawned at 12:00:00.004 was stopped by another agent, which wrote its last line... or not (an
    // older agent), and started it again at 12:00:03: the late watcher's line would land in the new run.
    await writeFile(log, `${header("b", "2026-12-01T12:00:00.000Z")}\nI main: loading model\n${header("b", "2026-12-01T12:00:03.000Z")}\n`);
    expect(appendRunFooter(log, footer("b", "late"), "2026-12-01T12:00:00.004Z")).toBe("later-run");
    expect(await marks(log)).toEqual(["starting", "starting"]);
    // The later run's own end is written; a run whose start is not known is not refused for it.
    expect(appendRunFooter(log, footer("b", "its own"), "2026-12-01T12:00:03.001Z")).toBe("written");
    await writeFile(log, `${header("b", "2026-12-01T12:05:00.000Z")}\n`, { flag: "a" });
    expect(runEndInLog(log, null)).toBe("open");
  });

  it("the app's note after a run's end ends nothing: a late watcher of that end adds no second last line", async () => {
    const log = path.join(dir, "noted.log");
    const spawnedAt = "2026-12-01T12:00:00.004Z";
    await writeFile(log, `${header("n", "2026-12-01T12:00:00.000Z")}\nI main: loading model\n`);
    expect(appendRunFooter(log, footer("n", "ended"), spawnedAt)).toBe("written");
    await writeFile(log, `${appNote("n", new Date("2026-12-01T12:00:05.100Z"), "restarting in 1.0 s")}\n`, { flag: "a" });
    expect(runEndInLog(log, spawnedAt)).toBe("ended");
    expect(appendRunFooter(log, footer("n", "seen late"), spawnedAt)).toBe("ended");
    expect(await marks(log)).toEqual(["starting", "ended ===", "1.0 s ==="]);
  });

  it("a log with no agent line in its last 64 KiB (a long run, or a rotated header) or no log at all: open", async () => {
    const log = path.join(dir, "long.log");
    await writeFile(log, `${footer("c", "old")}\n${"I srv  a line the server wrote\n".repeat(3000)}`);
    expect(runEndInLog(log, "2026-12-01T12:00:00.000Z")).toBe("open");
    expect(runEndInLog(path.join(dir, "missing.log"), null)).toBe("open");
  });
});
