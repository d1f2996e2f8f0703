/**
 * llama.cpp's names for the parts of a split GGUF set:
 * `<prefix>-00001-of-00003.gguf` … `<prefix>-00003-of-00003.gguf`
 * (`llama_split_path`). llama-server is given the first part and finds the
 * others by name next to it. Shared by the agent's discovery and the app's.
 */

export interface SplitName {
  /** The path without `-0000i-of-0000n.gguf`. */
  prefix: string;
  /** 1-based part number. */
  index: number;
  /** Parts in the set. */
  count: number;
}

const SPLIT_SUFFIX = /-(\d{5})-of-(\d{5})\.gguf$/i;

/** The split-set part a path names, or null when it does not follow the pattern (or names part 0, or a part past the count). */
export function parseSplitName(filePath: string): SplitName | null {
  const m = SPLIT_SUFFIX.exec(filePath);
  if (!m) return null;
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (index < 1 || count < 1 || index > count) return null;
  return { prefix: filePath.slice(0, m.index), index, count };
}

/** The path of part `index` (1-based) of a set of `count` with this prefix. */
export function splitPartPath(prefix: string, index: number, count: number): string {
  return `${prefix}-${String(index).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`;
}

/** The file names of the parts missing from `present` (1-based indexes), for messages. */
export function missingParts(prefix: string, count: number, present: ReadonlySet<number>): { index: number; name: string }[] {
  const out: { index: number; name: string }[] = [];
  for (let i = 1; i <= count; i++) if (!present.has(i)) out.push({ index: i, name: splitPartPath(prefix, i, count).split(/[\\/]/).pop() ?? "" });
  return out;
}

/** "part 2 (x-00002-of-00003.gguf) and part 3 (…)", at most `max` named. */
export function describeMissing(missing: { index: number; name: string }[], max = 5): string {
  const named = missing.slice(0, max).map((m) => `part ${m.index} (${m.name})`);
  const rest = missing.length > max ? ` and ${missing.length - max} more` : "";
  return `${named.join(", ")}${rest}`;
}
