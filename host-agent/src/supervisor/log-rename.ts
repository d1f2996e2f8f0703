/**
 * Moves a stopped server's log files (the current one and its rotated `.1`)
 * to another server id's names: a model renamed in the app keeps its log
 * history, and on the host the file carries the name the user now knows it by.
 *
 * Never loses or overwrites a line: each file is hard-linked under its new
 * name first (link() fails when the name exists, so a log that appeared there
 * meanwhile is never replaced), and only once every link is made are the old
 * names removed. When a link fails the links already made are removed again
 * and the old names are untouched. (The state folder is the agent's own, on a
 * local file system: APFS and the Linux ones all have hard links.)
 */
import { link, lstat, readdir, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { rotatedPath } from "./log-file.ts";

export interface LogRename {
  /** The new paths that now hold the old log's files (current first), empty when there was no log to move. */
  moved: string[];
}

/** Thrown when `toLog` (or its rotated copy) already exists: nothing was changed. */
export class LogNameTaken extends Error {
  constructor(readonly path: string) {
    super(`${path} already exists`);
  }
}

/** True when the folder lists both names (compared exactly): two entries, not one seen through a case-insensitive lookup. */
async function bothListed(a: string, b: string): Promise<boolean> {
  const names = new Set(await readdir(path.dirname(a)));
  return names.has(path.basename(a)) && names.has(path.basename(b));
}

async function statOrNull(file: string) {
  try {
    return await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/**
 * Moves `fromLog` and `fromLog.1` to `toLog` and `toLog.1` (absolute paths in
 * one folder; the caller builds them from validated ids). Resolves with the
 * new paths; rejects with LogNameTaken when a new name is taken (nothing
 * changed), or with the file system's error (nothing changed, or, should
 * removing an old name fail after every link was made, the log under both
 * names: still nothing lost).
 * A new name that is already the same file is taken as done: a second entry
 * (left by a move that stopped between link and unlink) loses the old name;
 * a name differing only in case on a case-insensitive file system (APFS's
 * default), the one entry, is renamed in place.
 */
export async function renameLogFiles(fromLog: string, toLog: string): Promise<LogRename> {
  const pairs = [
    [fromLog, toLog],
    [rotatedPath(fromLog), rotatedPath(toLog)],
  ] as const;
  const present: (readonly [string, string])[] = [];
  for (const [from, to] of pairs) {
    const src = await statOrNull(from);
    if (!src) continue;
    const dst = await statOrNull(to);
    if (dst && !(dst.dev === src.dev && dst.ino === src.ino)) throw new LogNameTaken(to);
    present.push([from, to]);
  }
  // A new name taken by a file of its own, where the old name has none (a `.1` only under the new id): also taken.
  for (const [from, to] of pairs) if (!present.some((p) => p[0] === from) && (await statOrNull(to))) throw new LogNameTaken(to);
  if (present.length === 0) return { moved: [] };

  /** New names made here: removed again when a later link fails. */
  const linked: string[] = [];
  /** Old names to remove once every new name is there. */
  const oldNames: string[] = [];
  /** Same entry, a name differing in case: renamed in place. */
  const recased: (readonly [string, string])[] = [];
  try {
    for (const pair of present) {
      const [from, to] = pair;
      if (await statOrNull(to)) {
        // The new name is this very file already: a second entry (an earlier move stopped between its link and
        // its unlink), or on a case-insensitive file system the one entry, named with other case.
        if (await bothListed(from, to)) oldNames.push(from);
        else recased.push(pair);
        continue;
      }
      try {
        await link(from, to);
      } catch (err) {
        throw (err as NodeJS.ErrnoException).code === "EEXIST" ? new LogNameTaken(to) : err;
      }
      linked.push(to);
      oldNames.push(from);
    }
  } catch (err) {
    await Promise.all(linked.map((p) => unlink(p).catch(() => undefined)));
    throw err;
  }
  for (const [from, to] of recased) await rename(from, to);
  for (const from of oldNames) await unlink(from);
  return { moved: present.map(([, to]) => to) };
}
