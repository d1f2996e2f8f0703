/**
 * A reader for the YAML subset docker-compose.yml uses (no YAML library is a
 * dependency, and this one file does not justify one): block mappings, block
 * sequences (of scalars, or of compact mappings: `- key: value`), flow
 * sequences of scalars (`["CMD", "node"]`), plain / 'single' / "double"
 * quoted scalars, comments. Scalars stay strings (compose interpolates them
 * before it reads any as numbers or booleans). Anything else (anchors,
 * aliases, tags, block scalars, flow mappings, multi-line flows) is an error
 * naming the line, so a compose file that outgrows the reader fails loudly.
 */
export type YamlValue = string | null | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  no: number;
  indent: number;
  text: string;
}

export class YamlSubsetError extends Error {
  constructor(message: string, line?: number) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.name = "YamlSubsetError";
  }
}

/** Removes a trailing ` # comment` that is outside quotes. */
function stripComment(text: string): string {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) return text.slice(0, i).trimEnd();
  }
  return text.trimEnd();
}

function toLines(source: string): Line[] {
  const out: Line[] = [];
  source.split(/\r?\n/).forEach((raw, i) => {
    if (raw.includes("\t") && /^\s*\t/.test(raw)) throw new YamlSubsetError("tabs in indentation", i + 1);
    const text = stripComment(raw);
    if (text.trim() === "" || text.trim() === "---") return;
    out.push({ no: i + 1, indent: text.length - text.trimStart().length, text: text.trim() });
  });
  return out;
}

function unquoteDouble(s: string, no: number): string {
  let out = "";
  for (let i = 1; i < s.length - 1; i++) {
    const c = s[i]!;
    if (c !== "\\") {
      out += c;
      continue;
    }
    const n = s[++i];
    const map: Record<string, string> = { n: "\n", t: "\t", '"': '"', "\\": "\\", "/": "/", r: "\r", "0": "\0" };
    if (n === undefined || !(n in map)) throw new YamlSubsetError(`unsupported escape \\${n ?? ""}`, no);
    out += map[n];
  }
  return out;
}

export function parseScalar(raw: string, no: number): YamlValue {
  const s = raw.trim();
  if (s === "" || s === "~" || s === "null") return null;
  if (s.startsWith('"')) {
    if (!s.endsWith('"') || s.length < 2) throw new YamlSubsetError(`unterminated "string"`, no);
    return unquoteDouble(s, no);
  }
  if (s.startsWith("'")) {
    if (!s.endsWith("'") || s.length < 2) throw new YamlSubsetError(`unterminated 'string'`, no);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (s.startsWith("[")) return parseFlowSequence(s, no);
  if (/^[&*!|>{%@`]/.test(s)) throw new YamlSubsetError(`unsupported YAML (anchor, alias, tag, block scalar or flow mapping): ${s}`, no);
  return s;
}

function parseFlowSequence(s: string, no: number): YamlValue[] {
  if (!s.endsWith("]")) throw new YamlSubsetError("a flow sequence must close on its line", no);
  const body = s.slice(1, -1).trim();
  if (body === "") return [];
  const items: string[] = [];
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") throw new YamlSubsetError("nested flow collections are not supported", no);
    else if (c === ",") {
      items.push(body.slice(start, i));
      start = i + 1;
    }
  }
  if (quote) throw new YamlSubsetError("unterminated string in a flow sequence", no);
  items.push(body.slice(start));
  return items.map((item) => parseScalar(item, no));
}

/** Splits `key: value` at the first `: ` (or a trailing `:`) outside quotes; null when it is not a mapping entry. */
function splitKey(text: string): { key: string; rest: string } | null {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      if (i === 0) quote = c;
    } else if (c === ":" && (i === text.length - 1 || text[i + 1] === " ")) {
      const rawKey = text.slice(0, i).trim();
      const key = rawKey.startsWith('"') || rawKey.startsWith("'") ? String(parseScalar(rawKey, 0)) : rawKey;
      return { key, rest: text.slice(i + 1).trim() };
    }
  }
  return null;
}

class Parser {
  private i = 0;
  constructor(private readonly lines: Line[]) {}

  parseDocument(): YamlValue {
    if (this.lines.length === 0) return null;
    const v = this.parseBlock(this.lines[0]!.indent);
    if (this.i < this.lines.length) throw new YamlSubsetError("unexpected indentation", this.lines[this.i]!.no);
    return v;
  }

  private parseBlock(indent: number): YamlValue {
    const first = this.lines[this.i]!;
    return first.text.startsWith("- ") || first.text === "-" ? this.parseSequence(indent) : this.parseMapping(indent);
  }

  private parseSequence(indent: number): YamlValue[] {
    const out: YamlValue[] = [];
    while (this.i < this.lines.length) {
      const line = this.lines[this.i]!;
      if (line.indent < indent) break;
      if (line.indent > indent) throw new YamlSubsetError("unexpected indentation in a sequence", line.no);
      if (!(line.text.startsWith("- ") || line.text === "-")) break;
      const item = line.text === "-" ? "" : line.text.slice(2).trim();
      this.i++;
      if (item === "") {
        out.push(this.nested(indent));
        continue;
      }
      const kv = item.startsWith('"') || item.startsWith("'") || item.startsWith("[") ? null : splitKey(item);
      if (kv) {
        // A compact mapping: `- key: value` and further keys at the item's indentation.
        const itemIndent = indent + 2;
        const map: Record<string, YamlValue> = {};
        map[kv.key] = kv.rest === "" ? this.nested(itemIndent) : parseScalar(kv.rest, line.no);
        if (this.i < this.lines.length && this.lines[this.i]!.indent === itemIndent && !this.lines[this.i]!.text.startsWith("- ")) {
          Object.assign(map, this.parseMapping(itemIndent));
        }
        out.push(map);
      } else out.push(parseScalar(item, line.no));
    }
    return out;
  }

  /** The block under a `key:` or `-` with nothing after it: more indented lines, or null. */
  private nested(parentIndent: number): YamlValue {
    const next = this.lines[this.i];
    if (!next || next.indent <= parentIndent) {
      // Compose allows a sequence at the same indentation as its key.
      if (next && next.indent === parentIndent && next.text.startsWith("- ")) return this.parseSequence(parentIndent);
      return null;
    }
    return this.parseBlock(next.indent);
  }

  private parseMapping(indent: number): Record<string, YamlValue> {
    const out: Record<string, YamlValue> = {};
    while (this.i < this.lines.length) {
      const line = this.lines[this.i]!;
      if (line.indent < indent) break;
      if (line.indent > indent) throw new YamlSubsetError("unexpected indentation in a mapping", line.no);
      if (line.text.startsWith("- ")) break;
      const kv = splitKey(line.text);
      if (!kv) throw new YamlSubsetError(`expected "key: value", got ${line.text}`, line.no);
      if (kv.key in out) throw new YamlSubsetError(`duplicate key ${kv.key}`, line.no);
      this.i++;
      out[kv.key] = kv.rest === "" ? this.nested(indent) : parseScalar(kv.rest, line.no);
    }
    return out;
  }
}

export function parseYamlSubset(source: string): YamlValue {
  return new Parser(toLines(source)).parseDocument();
}
