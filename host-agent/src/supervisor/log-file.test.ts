import { appendFile, mkdtemp, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enforceLogCap, LOG_READ_BEHIND_NOTE, LogFollower, openLogForChild, readLogTail, rotatedPath } from "./log-file.ts";
import { writeFileAtomic } from "./records.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "synapse-log-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("server log files", () => {
  it("keeps the cap with one rotation, and an O_APPEND writer keeps writing after it", async () => {
    const log = path.join(dir, "a.log");
    const child = openLogForChild(log, 1000, "=== header ===");
    expect(child.offset).toBe("=== header ===\n".length);
    const fd = child.fd;
    writeSync(fd, `${"x".repeat(1500)}\n`);
    expect(enforceLogCap(log, 1000)).toBe("=== header ===\n".length + 1501);
    expect((await readFile(rotatedPath(log), "utf8")).startsWith("=== header ===")).toBe(true);
    writeSync(fd, "after rotation\n");
    closeSync(child.fd);
    // Appended at the new end, not at the old offset (no hole of NULs).
    expect(await readFile(log, "utf8")).toBe("after rotation\n");
    expect(enforceLogCap(log, 1000)).toBe(null);
    const tail = await readLogTail(log, 2);
    expect(tail).toEqual(["x".repeat(1500).slice(0, 4096), "after rotation"]);
  });

  it("keeps what the server writes while the rotation's copy is made: in the copy, and read live from it", async () => {
    const log = path.join(dir, "during.log");
    const child = openLogForChild(log, 1000, "=== header ===");
    writeSync(child.fd, `${"x".repeat(1500)}\n`);
    const seen: string[] = [];
    const f = new LogFollower(log, child.offset, (lines) => seen.push(...lines));
    await f.poke();
    // The server's writes land while the bulk copy is being made: two lines, in two writes.
    const copied = enforceLogCap(log, 1000, () => {
      writeSync(child.fd, "written during the copy\n");
      writeSync(child.fd, "and another\n");
    });
    f.rotated(rotatedPath(log), copied!);
    writeSync(child.fd, "after\n");
    closeSync(child.fd);
    const rotated = await readFile(rotatedPath(log), "utf8");
    expect(rotated.endsWith("written during the copy\nand another\n")).toBe(true);
    expect(copied).toBe(Buffer.byteLength(rotated));
    expect(await readFile(log, "utf8")).toBe("after\n");
    await f.poke();
    expect(seen).toEqual(["x".repeat(1500).slice(0, 4096), "written during the copy", "and another", "after"]);
    f.close();
  });

  it("replaces the last copy on each rotation, leaves nothing else beside the log, and a reader of the last copy keeps its bytes", async () => {
    const sub = await mkdtemp(path.join(dir, "again-"));
    const log = path.join(sub, "b.log");
    const child = openLogForChild(log, 100, "=== header ===");
    writeSync(child.fd, `${"1".repeat(200)}\n`);
    expect(enforceLogCap(log, 100)).not.toBe(null);
    const reader = openSync(rotatedPath(log), "r"); // someone reading the last copy (less, readLogTail)
    writeSync(child.fd, `${"2".repeat(200)}\n`);
    expect(enforceLogCap(log, 100)).not.toBe(null);
    closeSync(child.fd);
    expect(await readFile(rotatedPath(log), "utf8")).toBe(`${"2".repeat(200)}\n`);
    const held = Buffer.alloc(300);
    const n = readSync(reader, held, 0, 300, 0);
    closeSync(reader);
    expect(held.subarray(0, n).toString()).toContain("1".repeat(200));
    // The copy moved aside (a rename over it makes ext4 write the new copy out first) is removed in the threadpool.
    await expect.poll(() => readdir(sub), { timeout: 5000 }).toEqual(["b.log", "b.log.1"]);
  });

  it("makes the logs folder when it is missing (the agent makes it at start; someone may have removed it since)", async () => {
    const log = path.join(dir, "removed", "logs", "a.log");
    closeSync(openLogForChild(log, 1000, "=== header ===").fd);
    expect(await readFile(log, "utf8")).toBe("=== header ===\n");
  });

  it("an atomic record write makes its folder when it is missing, and leaves no temp file", async () => {
    const file = path.join(dir, "gone", "servers", "a.json");
    await writeFileAtomic(file, "{}\n");
    expect(await readFile(file, "utf8")).toBe("{}\n");
    expect(await readdir(path.dirname(file))).toEqual(["a.json"]);
  });

  it("rotates an oversized log when a new process starts", async () => {
    const log = path.join(dir, "b.log");
    await writeFile(log, "y".repeat(5000));
    const child = openLogForChild(log, 1000, "=== second start ===");
    closeSync(child.fd);
    expect(child.offset).toBe("=== second start ===\n".length);
    expect(await readFile(log, "utf8")).toBe("=== second start ===\n");
    expect((await readFile(rotatedPath(log), "utf8")).length).toBe(5000);
  });

  it("a new process's output starts after the earlier runs and its header", async () => {
    const log = path.join(dir, "earlier.log");
    await writeFile(log, "an earlier run\n");
    const child = openLogForChild(log, 1000, "=== again ===");
    writeSync(child.fd, "new output\n");
    closeSync(child.fd);
    const text = await readFile(log, "utf8");
    expect(text).toBe("an earlier run\n=== again ===\nnew output\n");
    expect(text.slice(child.offset)).toBe("new output\n");
  });

  it("follows new complete lines, across a truncation", async () => {
    const log = path.join(dir, "c.log");
    await writeFile(log, "old line\n");
    const seen: string[] = [];
    const f = new LogFollower(log, 9, (lines) => seen.push(...lines));
    await appendFile(log, "one\ntw");
    await f.poke();
    expect(seen).toEqual(["one"]);
    await appendFile(log, "o\n");
    await f.poke();
    expect(seen).toEqual(["one", "two"]);
    await writeFile(log, "fresh\n");
    await f.poke();
    expect(seen).toEqual(["one", "two", "fresh"]);
    f.close();
  });

  it("reads the lines it had not read yet from the rotated copy, then the file's new top, each line once", async () => {
    const log = path.join(dir, "rot.log");
    await writeFile(log, "");
    const seen: string[] = [];
    const f = new LogFollower(log, 0, (lines) => seen.push(...lines), 16);
    await appendFile(log, "one\ntwo\n");
    await f.poke();
    await appendFile(log, "three\nfour\nfi");
    // Rotated before the follower read "three", "four" and the half line.
    const copied = enforceLogCap(log, 4)!;
    expect(copied).toBe("one\ntwo\nthree\nfour\nfi".length);
    f.rotated(rotatedPath(log), copied);
    expect(f.emittedRotatedOffset).toBe("one\ntwo\n".length);
    await appendFile(log, "ve\nsix\n");
    await f.poke();
    expect(seen).toEqual(["one", "two", "three", "four", "five", "six"]);
    expect(f.emittedRotatedOffset).toBe(null);
    expect(f.emittedOffset).toBe("ve\nsix\n".length);
    f.close();
  });

  it("a tail taken while the follower is still in the rotated copy leaves the unread lines to it", async () => {
    const log = path.join(dir, "rot-tail.log");
    await writeFile(log, "a\nb\nc\nd\n");
    const seen: string[] = [];
    // 5-byte reads: the 8 bytes take two, the second short, so the read has stopped when the poke resolves.
    const f = new LogFollower(log, 0, (lines) => seen.push(...lines), 5);
    await f.poke();
    await appendFile(log, "e\nf\n");
    f.rotated(rotatedPath(log), enforceLogCap(log, 4)!);
    await appendFile(log, "g\n");
    const end = () => ({ offset: f.emittedOffset, rotatedOffset: f.emittedRotatedOffset });
    const tail = await readLogTail(log, 10, { end });
    await f.poke();
    expect(tail).toEqual(["a", "b", "c", "d"]);
    expect([...tail, ...seen.slice(4)]).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
    f.close();
  });

  it.each([
    ["read before the rotation", true],
    ["read from the copy", false],
  ])("a line the rotation cut in two (its start %s) is left out of a tail until its end is read: the tail and the events have it once", async (_, readFirst) => {
    const log = path.join(dir, `rot-split-${readFirst}.log`);
    await writeFile(log, "");
    const seen: string[] = [];
    const f = new LogFollower(log, 0, (lines) => seen.push(...lines));
    const end = () => ({ offset: f.emittedOffset, rotatedOffset: f.emittedRotatedOffset });
    await appendFile(log, "one\ntwo\nthr");
    if (readFirst) await f.poke();
    f.rotated(rotatedPath(log), enforceLogCap(log, 4)!);
    await f.poke();
    expect(seen).toEqual(["one", "two"]);
    // The server goes on with the line in the emptied file, a part at a time.
    const tails = [await readLogTail(log, 10, { end })];
    await appendFile(log, "e");
    await f.poke();
    tails.push(await readLogTail(log, 10, { end }));
    expect(tails).toEqual([["one", "two"], ["one", "two"]]);
    await appendFile(log, "e\nfour\n");
    await f.poke();
    expect(seen).toEqual(["one", "two", "three", "four"]);
    f.close();
  });

  it("a tail read just before a rotation is read again: the tail and the events still have each line once", async () => {
    const log = path.join(dir, "rot-race.log");
    await writeFile(rotatedPath(log), "older\n");
    await writeFile(log, "a\nb\nc\n");
    const seen: string[] = [];
    const f = new LogFollower(log, 0, (lines) => seen.push(...lines));
    await f.poke();
    let rotate = true;
    const end = () => {
      // The cap rotates the file after the tail's reads, before the follower's offsets are asked.
      if (rotate) f.rotated(rotatedPath(log), enforceLogCap(log, 4)!);
      rotate = false;
      return { offset: f.emittedOffset, rotatedOffset: f.emittedRotatedOffset };
    };
    const tail = await readLogTail(log, 10, { end, rotations: () => f.rotations });
    await appendFile(log, "d\n");
    await f.poke();
    // Before, the file's lines (sent before the tail's seq) were cut away and the copy read before the rotation was given: ["older", "d"].
    expect([...tail, ...seen.slice(3)]).toEqual(["a", "b", "c", "d"]);
    f.close();
  });

  it("a reader the file was rotated twice past drops the rest of the first copy and says how many bytes", async () => {
    const log = path.join(dir, "rot-twice.log");
    await writeFile(log, "");
    const seen: string[] = [];
    const f = new LogFollower(log, 0, (lines) => seen.push(...lines));
    await appendFile(log, "first\nsecond\nthi");
    f.rotated(rotatedPath(log), enforceLogCap(log, 4)!);
    await appendFile(log, "rd\nfourth\n");
    f.rotated(rotatedPath(log), enforceLogCap(log, 4)!);
    await f.poke();
    expect(seen).toEqual([`${LOG_READ_BEHIND_NOTE} ${"first\nsecond\nthi".length} bytes of this log were rotated twice before they were read (not sent live)`, "rd", "fourth"]);
    f.close();
  });

  it("a poke resolves once what the file held when it was made is read, even while the file grows faster than it is read", async () => {
    const log = path.join(dir, "outrun.log");
    const fd = openSync(log, "a");
    const chunk = `${"z".repeat(99)}\n`.repeat(983); // ~96 KiB
    writeSync(fd, chunk);
    // The "server": 96 KiB more each time the follower hands out lines (it reads 64 KiB at a time), until 48 MiB.
    let written = chunk.length;
    const f = new LogFollower(log, 0, () => {
      if (written < 48 * 1024 * 1024) written += writeSync(fd, chunk);
    });
    await f.poke();
    const writtenWhenResolved = written;
    f.close();
    closeSync(fd);
    // Before, the poke read on to the file's end, which moved away as fast as it read: it resolved only once the
    // writer stopped, at 48 MiB (Supervisor.logs waited on it).
    expect(writtenWhenResolved).toBeLessThan(1024 * 1024);
  });

  it("keeps characters whole when a read ends inside one, and tells how far it has handed out", async () => {
    const log = path.join(dir, "utf8.log");
    await writeFile(log, "");
    const seen: string[] = [];
    // 5-byte reads: "größe" and "日本語" straddle read boundaries.
    const f = new LogFollower(log, 0, (lines) => seen.push(...lines), 5);
    await appendFile(log, "größe ok\n日本語のログ\nhalf");
    await f.poke();
    expect(seen).toEqual(["größe ok", "日本語のログ"]);
    expect(f.emittedOffset).toBe(Buffer.byteLength("größe ok\n日本語のログ\n"));
    await appendFile(log, "—done\n");
    await f.poke();
    expect(seen.at(-1)).toBe("half—done");
    f.close();
  });

  // /proc/self/fd is how this is seen on Linux; macOS has no /proc (the behaviour is the same code).
  it.skipIf(process.platform !== "linux")("keeps one handle open while following, and closes it when told to stop", async () => {
    const log = path.join(dir, "d.log");
    await writeFile(log, "");
    const handlesOn = async () => {
      let n = 0;
      for (const fd of await readdir("/proc/self/fd")) if ((await readlink(`/proc/self/fd/${fd}`).catch(() => "")) === log) n++;
      return n;
    };
    const f = new LogFollower(log, 0, () => undefined);
    for (let i = 0; i < 5; i++) {
      await appendFile(log, `line ${i}\n`);
      await f.poke();
    }
    expect(await handlesOn()).toBe(1);
    f.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(await handlesOn()).toBe(0);
    await appendFile(log, "after\n");
    await f.poke(); // a poke after close reads nothing and opens nothing
    expect(await handlesOn()).toBe(0);
  });
});
