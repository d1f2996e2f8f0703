/**
 * Token counts of a model's answer, from its last bytes. llama-server ends
 * every completion answer (the JSON of a plain one, the last event of a
 * stream, OpenAI's and its own formats alike) with
 * `"timings":{"cache_n":…,"prompt_n":…,…,"predicted_n":…}`; OpenAI's
 * `usage` (prompt_tokens, completion_tokens, prompt_tokens_details.
 * cached_tokens) is read when there is no `timings` (embeddings).
 *
 * Counting: `prompt` = every prompt token of the request (cache_n +
 * prompt_n, as OpenAI's usage.prompt_tokens); `cachedPrompt` = those
 * reused from the slot's cache (cache_n). llama-server's own
 * `llamacpp:prompt_tokens_total` counts only the processed ones (prompt_n),
 * and `llamacpp:prompt_tokens_cached_total` the cached ones.
 *
 * Only a bounded tail is kept (TAIL_BYTES), so a long answer costs no
 * memory; a quote inside generated text is escaped (\") in JSON, so the
 * field names cannot be forged by the text.
 */
import type { AnswerTokens } from "./metrics-port";

/** Bytes of the answer's end that are kept: the timings object and usage are well under 1 KB. */
export const TAIL_BYTES = 4096;

export class AnswerTail {
  /** The last chunks, holding at least the last TAIL_BYTES bytes (whole chunks: no copy per chunk). */
  private chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    // Drop the oldest chunks that are not needed for the last TAIL_BYTES.
    while (this.chunks.length > 1 && this.size - this.chunks[0]!.length >= TAIL_BYTES) this.size -= this.chunks.shift()!.length;
  }

  tokens(): AnswerTokens | null {
    // A short answer is one chunk: no copy. Read as latin1 (one char per byte, no UTF-8 decoding): every byte
    // of a multi-byte UTF-8 character is >= 0x80, so none reads as the ASCII quotes, braces and digits searched
    // for, and the numbers read the same.
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    return tokensOfAnswerTail(all.toString("latin1", Math.max(0, all.length - TAIL_BYTES)));
  }
}

function lastObject(text: string, field: string): string | null {
  const at = text.lastIndexOf(`"${field}":{`);
  if (at === -1 || (at > 0 && text[at - 1] === "\\")) return null;
  // Up to the object's end; `usage` nests one object (prompt_tokens_details).
  let depth = 0;
  for (let i = at + field.length + 3; i < text.length; i++) {
    const c = text[i];
    if (c === "{") depth++;
    else if (c === "}") {
      if (depth === 0) return text.slice(at, i + 1);
      depth--;
    }
  }
  return null;
}

/** One pattern per field name (a handful of names), made once. */
const FIELD_PATTERNS = new Map<string, RegExp>();

function intField(obj: string, name: string): number | null {
  let re = FIELD_PATTERNS.get(name);
  if (!re) FIELD_PATTERNS.set(name, (re = new RegExp(`"${name}":(\\d+)`)));
  const m = re.exec(obj);
  return m ? Number(m[1]) : null;
}

/** The token counts in an answer's tail (see the file's header), or null when it names none. */
export function tokensOfAnswerTail(text: string): AnswerTokens | null {
  const timings = lastObject(text, "timings");
  if (timings) {
    const cache = intField(timings, "cache_n") ?? 0;
    const processed = intField(timings, "prompt_n");
    const predicted = intField(timings, "predicted_n");
    if (processed !== null && predicted !== null) return { prompt: cache + processed, cachedPrompt: cache, completion: predicted };
  }
  const usage = lastObject(text, "usage");
  if (usage) {
    const prompt = intField(usage, "prompt_tokens");
    if (prompt !== null) return { prompt, cachedPrompt: intField(usage, "cached_tokens") ?? 0, completion: intField(usage, "completion_tokens") ?? 0 };
  }
  return null;
}
