import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUN_HEADER_PREFIX, runFooter } from "../shared/run-header.ts";
import { appendRunFooter, runEndedInLog } from "./run-footer.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-footer-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const header = (id: string) => `${RUN_HEADER_PREFIX}${id} at 2026-12-01T12:00:00.000Z: /opt/llama-server --model /m/a.gguf ===`;
const footer = (id: string, reason: string) => runFooter(id, new Date("2026-12-01T12:00:05Z"), "stopped", "requested", reason);

describe("a run's last line, once per run", () => {
  it("written after the run's header and the server's lines; a second end of the same run adds none; the next run gets its own", async () => {
    const log = path.join(dir, "a.log");
    await writeFile(log, `${header("a")}\nI main: loading model\n`);
    expect(runEndedInLog(log)).toBe(false);
    expect(appendRunFooter(log, footer("a", "first"))).toBe("written");
    expect(runEndedInLog(log)).toBe(true);
    // Another agent that saw the same end.
    expect(appendRunFooter(log, footer("a", "second"))).toBe("already");
    await writeFile(log, `${header("a")}\nI main: loading model\n`, { flag: "a" });
    expect(appendRunFooter(log, footer("a", "third"))).toBe("written");
    const marks = (await readFile(log, "utf8")).split("\n").filter((l) => l.startsWith("=== "));
    expect(marks.map((l) => (l.startsWith(RUN_HEADER_PREFIX) ? "starting" : l.slice(-9)))).toEqual(["starting", "first ===", "starting", "third ==="]);
  });

  it("a log with no agent line in its last 64 KiB (a long run, or a rotated header) or no log at all: not ended", async () => {
    const log = path.join(dir, "long.log");
    await writeFile(log, `${footer("b", "old")}\n${"I srv  a line the server wrote\n".repeat(3000)}`);
    expect(runEndedInLog(log)).toBe(false);
    expect(runEndedInLog(path.join(dir, "missing.log"))).toBe(false);
  });
});
