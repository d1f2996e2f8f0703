/**
 * Lays models out as the Hugging Face hub cache keeps them (what
 * `huggingface-cli download` leaves): each file's bytes in
 * `models--org--name/blobs/<sha256>` (no extension), and
 * `snapshots/<rev>/<file>` a relative symlink to `../../blobs/<sha256>`
 * (`../../../blobs/…` one folder deeper). Each call writes its own files.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rename, symlink } from "node:fs/promises";
import path from "node:path";
import { writeTinyModel, writeTinyModelSplit, type TinyModelOptions } from "../../src/gguf/tiny-model.ts";

export interface HfRepo {
  /** `…/models--org--name`. */
  repo: string;
  /** `…/models--org--name/snapshots/<rev>`. */
  snapshot: string;
}

export async function hfRepo(root: string, repoName: string, rev: string): Promise<HfRepo> {
  const repo = path.join(root, repoName);
  const snapshot = path.join(repo, "snapshots", rev);
  await mkdir(path.join(repo, "blobs"), { recursive: true });
  await mkdir(snapshot, { recursive: true });
  return { repo, snapshot };
}

/** Moves `file` into the repo's blobs/ under its sha256 and links `snapshot/<relName>` to it (relative); returns the blob path. */
export async function toBlob(r: HfRepo, file: string, relName: string): Promise<string> {
  const sha = createHash("sha256").update(await readFile(file)).digest("hex");
  const blob = path.join(r.repo, "blobs", sha);
  await rename(file, blob);
  const link = path.join(r.snapshot, relName);
  await mkdir(path.dirname(link), { recursive: true });
  await symlink(path.relative(path.dirname(link), blob), link);
  return blob;
}

/** The tiny model as one snapshot file `snapshot/<relName>`; returns the snapshot path and its blob. */
export async function hfTinyModel(r: HfRepo, relName: string, opts?: TinyModelOptions): Promise<{ path: string; blob: string }> {
  const tmp = path.join(r.repo, "blobs", `.incoming-${path.basename(relName)}`);
  await writeTinyModel(tmp, opts);
  return { path: path.join(r.snapshot, relName), blob: await toBlob(r, tmp, relName) };
}

/**
 * The tiny model as a split set `snapshot/<relPrefix>-0000i-of-0000n.gguf`,
 * each part a relative link to its own blob; returns the snapshot paths and blobs, in part order.
 */
export async function hfTinyModelSplit(r: HfRepo, relPrefix: string, count: number, opts?: TinyModelOptions): Promise<{ paths: string[]; blobs: string[] }> {
  const written = await writeTinyModelSplit(path.join(r.repo, "blobs", ".incoming"), count, opts);
  const paths: string[] = [];
  const blobs: string[] = [];
  for (const file of written) {
    const rel = path.join(path.dirname(relPrefix), `${path.basename(relPrefix)}${path.basename(file).slice(".incoming".length)}`);
    blobs.push(await toBlob(r, file, rel));
    paths.push(path.join(r.snapshot, rel));
  }
  return { paths, blobs };
}
