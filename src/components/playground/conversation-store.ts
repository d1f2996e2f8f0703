/**
 * Conversations kept in the browser only (localStorage, one key), never sent
 * to the server except as the messages of a request. Bounded: at most
 * MAX_CONVERSATIONS, each with its last MAX_MESSAGES, and STORE_MAX_CHARS of
 * text in all; past a bound the least recently used conversations (and a
 * conversation's oldest messages) go first. What is read back is checked
 * (a schema at this boundary): a damaged or foreign value reads as empty.
 */
import * as z from "zod/mini";

export const STORAGE_KEY = "synapse.playground.conversations.v1";
export const MAX_CONVERSATIONS = 30;
export const MAX_MESSAGES = 200;
/** UTF-16 code units of message text in all (localStorage's quota is about 5 M of them per origin). */
export const STORE_MAX_CHARS = 1_000_000;

const statsSchema = z.object({
  ttftMs: z.nullable(z.number()),
  tokensPerS: z.nullable(z.number()),
  tokens: z.number(),
  source: z.enum(["server", "browser"]),
  loaded: z.boolean(),
});

const messageSchema = z.object({
  role: z.enum(["user", "assistant"]),
  content: z.string(),
  /** A reasoning model's thinking (delta.reasoning_content), shown apart and not sent back. */
  reasoning: z.optional(z.string()),
  stats: z.optional(statsSchema),
  /** The request failed (the message says why). */
  error: z.optional(z.string()),
  /** The user stopped the answer. */
  stopped: z.optional(z.boolean()),
});

const conversationSchema = z.object({
  id: z.string(),
  title: z.string(),
  model: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
  messages: z.array(messageSchema),
});

const storeSchema = z.array(conversationSchema);

export type StoredMessage = z.infer<typeof messageSchema>;
export type Conversation = z.infer<typeof conversationSchema>;

export interface StoreLimits {
  conversations: number;
  messages: number;
  chars: number;
}

export const LIMITS: StoreLimits = { conversations: MAX_CONVERSATIONS, messages: MAX_MESSAGES, chars: STORE_MAX_CHARS };

function chars(c: Conversation): number {
  return c.messages.reduce((n, m) => n + m.content.length + (m.reasoning?.length ?? 0) + (m.error?.length ?? 0), c.title.length);
}

/**
 * The list within the limits, most recently updated first. The newest
 * conversation is kept even when it alone is over the character bound: its
 * oldest messages go until it fits (the last message always stays).
 */
export function boundConversations(list: readonly Conversation[], limits: StoreLimits = LIMITS): Conversation[] {
  const sorted = [...list].sort((a, b) => b.updatedAt - a.updatedAt).slice(0, limits.conversations);
  const out: Conversation[] = [];
  let total = 0;
  for (const c of sorted) {
    let kept = c.messages.length > limits.messages ? { ...c, messages: c.messages.slice(-limits.messages) } : c;
    if (out.length === 0) {
      while (chars(kept) > limits.chars && kept.messages.length > 1) kept = { ...kept, messages: kept.messages.slice(1) };
    } else if (total + chars(kept) > limits.chars) break;
    total += chars(kept);
    out.push(kept);
  }
  return out;
}

/** The stored conversations, or [] when there are none or the value is not ours. */
export function readConversations(storage: Pick<Storage, "getItem">): Conversation[] {
  let raw: string | null;
  try {
    raw = storage.getItem(STORAGE_KEY);
  } catch {
    return []; // storage disabled (privacy settings)
  }
  if (!raw) return [];
  try {
    const parsed = storeSchema.safeParse(JSON.parse(raw));
    return parsed.success ? boundConversations(parsed.data) : [];
  } catch {
    return [];
  }
}

/** Writes the bounded list; false when the browser refused (quota, disabled storage). */
export function writeConversations(storage: Pick<Storage, "setItem">, list: readonly Conversation[]): boolean {
  try {
    storage.setItem(STORAGE_KEY, JSON.stringify(boundConversations(list)));
    return true;
  } catch {
    return false;
  }
}

/** A title from the first user message: its first line, at most 60 characters. */
export function titleOf(text: string): string {
  const line = text.trim().split("\n")[0]?.trim() ?? "";
  return line.length > 60 ? `${line.slice(0, 59)}…` : line || "New conversation";
}
