/**
 * Walks the model roots for `.gguf` files, following symlinks (Hugging Face
 * snapshots are symlinks into `blobs/`). Files are returned by the path
 * under which they were found, never the resolved one: llama.cpp finds a
 * split set's later parts by name next to the first.
 *
 * Nothing is dropped without a word: a model root that does not exist, a
 * broken link (and where it points), a symlink loop, a `.gguf` link that
 * resolves outside the roots, a folder that cannot be read and the walk's
 * own limits come back as problems.
 */
import { lstat, readdir, readlink, realpath, stat } from "node:fs/promises";
import path from "node:path";
import { isInside } from "../supervisor/spec-check.ts";
import { errorMessage } from "../shared/error-text.ts";

export interface WalkProblem {
  path: string;
  error: string;
}

export interface WalkResult {
  /** `.gguf` regular files (through links), as found, sorted by folder then name. */
  files: string[];
  problems: WalkProblem[];
}

export interface WalkLimits {
  /** Folder levels below a root that are scanned. */
  maxDepth: number;
  /** Directory entries looked at in all, over every root. */
  maxEntries: number;
}

export const DEFAULT_WALK_LIMITS: WalkLimits = { maxDepth: 8, maxEntries: 20_000 };

const isGguf = (name: string) => name.toLowerCase().endsWith(".gguf");

/** Says what is wrong with a link that `stat` cannot follow. */
async function brokenLink(p: string, err: NodeJS.ErrnoException): Promise<string> {
  const target = await readlink(p).catch(() => null);
  const to = target === null ? "" : ` to ${target}`;
  if (err.code === "ENOENT" || err.code === "ENOTDIR") return `broken link: points${to}, which does not exist`;
  if (err.code === "ELOOP") return `symlink loop: the link${to} never reaches a file`;
  return `link${to} cannot be followed (${err.code ?? err.message})`;
}

/** Scans every root; see the module comment. Never throws for a file system problem. */
export async function walkModelRoots(roots: string[], limits: WalkLimits = DEFAULT_WALK_LIMITS): Promise<WalkResult> {
  const files: string[] = [];
  const problems: WalkProblem[] = [];
  const seenDirs = new Set<string>();
  let entries = 0;
  let stopped = false;
  const realRoots = (await Promise.all(roots.map((r) => realpath(r).catch(() => null)))).filter((r): r is string => r !== null);
  const insideRoots = (real: string) => realRoots.some((r) => isInside(real, r));

  const walk = async (dir: string, depth: number): Promise<void> => {
    if (stopped) return;
    if (depth > limits.maxDepth) {
      problems.push({ path: dir, error: `not scanned: more than ${limits.maxDepth} folders below a model root` });
      return;
    }
    const real = await realpath(dir).catch(() => null);
    // A folder reached twice (two links to it, or a link back up the tree) is scanned once.
    if (!real || seenDirs.has(real)) return;
    seenDirs.add(real);
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (err) {
      problems.push({ path: dir, error: `cannot read this folder (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})` });
      return;
    }
    for (const name of names) {
      if (++entries > limits.maxEntries) {
        stopped = true;
        problems.push({ path: dir, error: `scan stopped after ${limits.maxEntries} entries; files past this point were not looked at (point the model roots at smaller folders)` });
        return;
      }
      if (name.startsWith(".")) continue;
      const p = path.join(dir, name);
      const link = await lstat(p).catch(() => null);
      if (!link) continue; // gone since readdir
      let st;
      try {
        st = await stat(p); // follows links
      } catch (err) {
        if (link.isSymbolicLink()) problems.push({ path: p, error: await brokenLink(p, err as NodeJS.ErrnoException) });
        continue;
      }
      if (st.isDirectory()) {
        await walk(p, depth + 1);
      } else if (st.isFile() && isGguf(name)) {
        const target = await realpath(p).catch(() => null);
        if (target && insideRoots(target)) files.push(p);
        else problems.push({ path: p, error: `links to ${target ?? "a file that cannot be resolved"}, outside the model roots (${roots.join(", ")}): not served; move the file under a model root` });
      }
    }
  };
  for (const root of roots) {
    const st = await stat(root).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      problems.push({ path: root, error: st.code === "ENOENT" ? `this model folder does not exist: create it (mkdir -p ${root}) and put .gguf files in it` : `this model folder cannot be read (${st.code ?? st.message})` });
      continue;
    }
    if (!st.isDirectory()) {
      problems.push({ path: root, error: "this model folder is not a folder" });
      continue;
    }
    await walk(root, 0);
  }
  return { files, problems };
}
