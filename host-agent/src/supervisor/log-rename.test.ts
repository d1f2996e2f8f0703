/**
 * renameLogFiles on real files in a temp folder: a log and its rotated copy
 * move to the new names, and a taken new name refuses the move with every file
 * as it was.
 */
import { link, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { LogNameTaken, renameLogFiles } from "./log-rename.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-log-rename-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const at = (name: string) => path.join(dir, name);
async function contents(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(dir)).sort()) out[f] = await readFile(at(f), "utf8");
  return out;
}

describe("renameLogFiles", () => {
  it("moves the log and its rotated copy to the new names, leaving nothing under the old ones", async () => {
    await writeFile(at("old.log"), "current run\n");
    await writeFile(at("old.log.1"), "rotated run\n");
    expect(await renameLogFiles(at("old.log"), at("new.log"))).toEqual({ moved: [at("new.log"), at("new.log.1")] });
    expect(await contents()).toEqual({ "new.log": "current run\n", "new.log.1": "rotated run\n" });
  });

  it("moves a log without a rotated copy", async () => {
    await writeFile(at("old.log"), "only run\n");
    expect(await renameLogFiles(at("old.log"), at("new.log"))).toEqual({ moved: [at("new.log")] });
    expect(await contents()).toEqual({ "new.log": "only run\n" });
  });

  it("moves nothing when there is no log", async () => {
    expect(await renameLogFiles(at("old.log"), at("new.log"))).toEqual({ moved: [] });
    expect(await contents()).toEqual({});
  });

  it.each([
    ["the new log", { "old.log": "a\n", "old.log.1": "a1\n", "new.log": "b\n" }, "new.log"],
    ["the new rotated copy", { "old.log": "a\n", "old.log.1": "a1\n", "new.log.1": "b1\n" }, "new.log.1"],
    ["a rotated copy under the new name where the old log has none", { "old.log": "a\n", "new.log.1": "b1\n" }, "new.log.1"],
  ])("refuses when %s exists, changing no file", async (_what, files: Record<string, string>, taken) => {
    for (const [name, text] of Object.entries(files)) await writeFile(at(name), text);
    const err = await renameLogFiles(at("old.log"), at("new.log")).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LogNameTaken);
    expect((err as LogNameTaken).path).toBe(at(taken));
    expect(await contents()).toEqual(Object.fromEntries(Object.entries(files).sort(([a], [b]) => a.localeCompare(b))));
  });
});

describe("renameLogFiles after a move that stopped half-way", () => {
  it("finishes it: the new names kept, the old names (second entries of the same files) removed", async () => {
    await writeFile(at("old.log"), "current run\n");
    await writeFile(at("old.log.1"), "rotated run\n");
    // An earlier move linked the new names, then the agent died before removing the old ones.
    await link(at("old.log"), at("new.log"));
    await link(at("old.log.1"), at("new.log.1"));
    expect(await renameLogFiles(at("old.log"), at("new.log"))).toEqual({ moved: [at("new.log"), at("new.log.1")] });
    expect(await contents()).toEqual({ "new.log": "current run\n", "new.log.1": "rotated run\n" });
  });
});
