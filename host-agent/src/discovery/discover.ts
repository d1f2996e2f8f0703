/**
 * The agent's `discover`: every `.gguf` file under the model roots, with its
 * GGUF summary, as the registry should see it.
 *
 * - A complete split set is one entry, its first part, with `splitCount`,
 *   and size and parameter count summed over every part.
 * - An incomplete set, a later part whose first part is missing, a file whose
 *   header says it is part of a set its name does not follow, a broken link,
 *   a symlink loop and a link out of the roots are entries with an `error`
 *   that says which (older apps show errors as they are).
 * - A file in a Hugging Face cache snapshot carries its `revision`.
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { readGguf, summarizeGguf, type GgufFile, type GgufSummary } from "../gguf/reader.ts";
import type { GgufInfo } from "../protocol.ts";
import { describeMissing, missingParts, parseSplitName, splitPartPath } from "../shared/split-name.ts";
import { HfRevisions } from "./hf-cache.ts";
import { DEFAULT_WALK_LIMITS, walkModelRoots, type WalkLimits } from "./walk.ts";
import { errorMessage } from "../shared/error-text.ts";
import { shapeOfGguf } from "../gguf/shape.ts";
import { SHAPE_READ_OPTIONS } from "./model-shape.ts";

const NO_SUMMARY: GgufSummary = { architecture: null, name: null, parameterCount: null, quantization: null, contextLength: null };

function errorEntry(filePath: string, sizeBytes: number, error: string): GgufInfo {
  return { path: filePath, sizeBytes, ...NO_SUMMARY, error };
}

/** The entry's `shape`, or `shapeError` saying why a readable file has none. */
function withShape(files: { file: string; gguf: GgufFile }[]): Pick<GgufInfo, "shape" | "shapeError"> {
  try {
    return { shape: shapeOfGguf(files) };
  } catch (err) {
    return { shapeError: errorMessage(err) };
  }
}

const elements = (f: GgufFile) => f.tensors.reduce((sum, t) => sum + t.dims.reduce((p, d) => p * d, 1), 0);
const sizeOf = (p: string) => stat(p).then((s) => s.size, () => 0);
const u16 = (f: GgufFile, key: string) => {
  const v = f.metadata.get(key);
  return typeof v === "number" ? v : null;
};

/** One file that is not named as a split part. */
async function single(file: string): Promise<GgufInfo> {
  const sizeBytes = await sizeOf(file);
  try {
    const g = await readGguf(file, SHAPE_READ_OPTIONS);
    const count = u16(g, "split.count");
    if (count !== null && count > 1) {
      const no = u16(g, "split.no") ?? 0;
      return errorEntry(file, sizeBytes, `its header says it is part ${no + 1} of a split set of ${count}, but its name does not end in -0000${no + 1}-of-${String(count).padStart(5, "0")}.gguf, so llama.cpp cannot find the other parts: rename the parts as llama-gguf-split names them`);
    }
    return { path: file, sizeBytes, ...summarizeGguf(g), error: null, ...withShape([{ file, gguf: g }]) };
  } catch (err) {
    return errorEntry(file, sizeBytes, errorMessage(err));
  }
}

/** A complete split set, `parts` in order: one entry for the first part covering them all. */
async function splitSet(parts: string[]): Promise<GgufInfo> {
  const first = parts[0]!;
  const sizes = await Promise.all(parts.map(sizeOf));
  const sizeBytes = sizes.reduce((a, b) => a + b, 0);
  const files: GgufFile[] = [];
  for (const [i, part] of parts.entries()) {
    try {
      files.push(await readGguf(part, SHAPE_READ_OPTIONS));
    } catch (err) {
      return errorEntry(first, sizeBytes, `part ${i + 1} of ${parts.length} of this split set cannot be read: ${errorMessage(err)}`);
    }
  }
  const head = files[0]!;
  const declared = u16(head, "split.count");
  if (declared !== null && declared !== parts.length) {
    return errorEntry(first, sizeBytes, `the file names say ${parts.length} parts but the first part's header says split.count ${declared}`);
  }
  const summary = summarizeGguf(head);
  // general.parameter_count describes the whole model; without it, count every part's tensors.
  const declaredParams = head.metadata.get("general.parameter_count");
  const parameterCount = typeof declaredParams === "number" ? declaredParams : files.reduce((sum, f) => sum + elements(f), 0);
  return { path: first, sizeBytes, ...summary, parameterCount, error: null, splitCount: parts.length, ...withShape(files.map((gguf, i) => ({ file: parts[i]!, gguf }))) };
}

/**
 * The entry `discover` gives the model whose (first) file is `modelPath`, found there or not: a name
 * `-00001-of-0000n.gguf` reads as the whole split set (size and parameter count over every part), any other
 * as one file. Problems with the file become the entry's `error`; never throws for them.
 */
export async function describeModelFile(modelPath: string): Promise<GgufInfo> {
  const split = parseSplitName(modelPath);
  if (split && split.count > 1 && split.index === 1) return splitSet(Array.from({ length: split.count }, (_, i) => splitPartPath(split.prefix, i + 1, split.count)));
  return single(modelPath);
}

/**
 * Scans `roots` and reads every file's header. Entries come sorted by path.
 * File system and format problems become entries with `error`; never throws for them.
 */
export async function discoverModels(roots: string[], limits: WalkLimits = DEFAULT_WALK_LIMITS): Promise<GgufInfo[]> {
  const { files, problems } = await walkModelRoots(roots, limits);
  const out: GgufInfo[] = problems.map((p) => errorEntry(p.path, 0, p.error));

  // Split parts grouped by set (prefix and count); everything else is a single file.
  const sets = new Map<string, { prefix: string; count: number; parts: Map<number, string> }>();
  for (const file of files) {
    const split = parseSplitName(file);
    if (!split) {
      out.push(await single(file));
      continue;
    }
    const key = `${split.prefix}\0${split.count}`;
    const set = sets.get(key) ?? { prefix: split.prefix, count: split.count, parts: new Map<number, string>() };
    set.parts.set(split.index, file);
    sets.set(key, set);
  }
  for (const set of sets.values()) {
    const present = new Set(set.parts.keys());
    const missing = missingParts(set.prefix, set.count, present);
    const firstPresent = Math.min(...present);
    const at = set.parts.get(firstPresent)!;
    if (missing.length === 0) {
      out.push(await splitSet([...set.parts.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p)));
    } else if (present.has(1)) {
      out.push(errorEntry(at, await sizeOf(at), `incomplete split set: ${describeMissing(missing)} of ${set.count} missing from ${path.dirname(at)}; llama-server needs every part to load it`));
    } else {
      const found = [...present].sort((a, b) => a - b).join(", ");
      out.push(errorEntry(at, await sizeOf(at), `part${present.size > 1 ? "s" : ""} ${found} of a split set of ${set.count} whose first part is missing: ${describeMissing(missing)}`));
    }
  }

  const revisions = new HfRevisions();
  for (const info of out) {
    if (info.error !== null) continue;
    const revision = await revisions.of(info.path);
    if (revision) info.revision = revision;
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
