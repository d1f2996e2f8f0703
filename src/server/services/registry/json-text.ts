/**
 * Reading the seed's JSON files as people save them: a UTF-8 byte-order
 * mark (Windows editors write one) is dropped, and keys that appear twice in
 * one object are found in the text, since JSON.parse silently keeps the last.
 * The scan uses jsonc-parser's visitor (Microsoft's parser behind VS Code's
 * JSON support); JSON.parse still decides what is valid JSON.
 */
import { visit } from "jsonc-parser";

/** The text without a leading U+FEFF. */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

export interface DuplicateKey {
  /** Path of the object holding the key (`["models"]` for a model id). */
  path: (string | number)[];
  key: string;
  /** 1-based line of each occurrence, in order. */
  lines: number[];
}

const MAX_REPORTED = 1000;

/** Every key that appears more than once in the same object, with the lines it appears on (at most 1000 reported). */
export function duplicateKeys(text: string): DuplicateKey[] {
  const found: DuplicateKey[] = [];
  const stack: { path: (string | number)[]; keys: Map<string, number[]> }[] = [];
  visit(
    text,
    {
      onObjectBegin: (_offset, _length, _line, _char, pathSupplier) => {
        stack.push({ path: pathSupplier(), keys: new Map() });
      },
      onObjectProperty: (property, _offset, _length, startLine) => {
        const top = stack.at(-1);
        if (!top) return;
        const lines = top.keys.get(property);
        if (lines) lines.push(startLine + 1);
        else top.keys.set(property, [startLine + 1]);
      },
      onObjectEnd: () => {
        const top = stack.pop();
        if (!top) return;
        for (const [key, lines] of top.keys) if (lines.length > 1 && found.length < MAX_REPORTED) found.push({ path: top.path, key, lines });
      },
    },
    { disallowComments: true, allowTrailingComma: false },
  );
  return found;
}

/** "lines 3 and 9" / "lines 3, 9 and 12" / "line 5 (2 times)". */
export function describeLines(lines: number[]): string {
  const unique = [...new Set(lines)];
  if (unique.length === 1) return lines.length > 1 ? `line ${unique[0]} (${lines.length} times)` : `line ${unique[0]}`;
  return `lines ${unique.slice(0, -1).join(", ")} and ${unique.at(-1)}`;
}
