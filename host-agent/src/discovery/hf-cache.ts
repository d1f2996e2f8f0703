/**
 * The Hugging Face hub cache layout: `models--<org>--<name>/snapshots/<commit>/…`
 * with `refs/<name>` files holding the commit each ref (`main`, `pr/3`, a tag)
 * points at. Two snapshots of one repository are two revisions of the same
 * files; the one `refs/main` names is the one a user means.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";

export interface HfRevision {
  /** The snapshot folder's name: the commit hash. */
  commit: string;
  /** Refs whose file names this commit (`main`, `pr/3`), sorted. */
  refs: string[];
}

/** The cache repository folder and snapshot commit a path lies in, or null outside the layout. */
export function hfSnapshotOf(filePath: string): { repoDir: string; commit: string } | null {
  const parts = filePath.split(path.sep);
  const at = parts.lastIndexOf("snapshots");
  if (at < 1 || at + 2 >= parts.length) return null;
  if (!/^models--/.test(parts[at - 1] ?? "")) return null;
  const commit = parts[at + 1] ?? "";
  if (!commit) return null;
  return { repoDir: parts.slice(0, at).join(path.sep) || path.sep, commit };
}

const MAX_REFS = 256;

/** Every ref of a cache repository and the commit it names (refs may sit in subfolders: `refs/pr/3`). */
async function readRefs(repoDir: string): Promise<Map<string, string>> {
  const refs = new Map<string, string>();
  const refsDir = path.join(repoDir, "refs");
  const walk = async (dir: string, prefix: string, depth: number): Promise<void> => {
    if (depth > 3 || refs.size >= MAX_REFS) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const name = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(dir, e.name), name, depth + 1);
      else if (e.isFile() && refs.size < MAX_REFS) {
        const text = await readFile(path.join(dir, e.name), "utf8").catch(() => "");
        const commit = text.trim();
        if (/^[0-9a-f]{7,64}$/i.test(commit)) refs.set(name, commit);
      }
    }
  };
  await walk(refsDir, "", 0);
  return refs;
}

/** Reads each repository's refs once per discovery. */
export class HfRevisions {
  private readonly repos = new Map<string, Promise<Map<string, string>>>();

  /** The revision a file lies in, or null when the path is not in a cache snapshot. */
  async of(filePath: string): Promise<HfRevision | null> {
    const snap = hfSnapshotOf(filePath);
    if (!snap) return null;
    let refs = this.repos.get(snap.repoDir);
    if (!refs) {
      refs = readRefs(snap.repoDir);
      this.repos.set(snap.repoDir, refs);
    }
    const names = [...(await refs).entries()].filter(([, c]) => c === snap.commit).map(([n]) => n).sort();
    return { commit: snap.commit, refs: names };
  }
}
