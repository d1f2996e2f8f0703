import { describe, expect, it } from "vitest";
import { boundConversations, readConversations, STORAGE_KEY, titleOf, writeConversations, type Conversation } from "./conversation-store";

function conv(id: string, updatedAt: number, messages: string[]): Conversation {
  return { id, title: id, model: "m", createdAt: 0, updatedAt, messages: messages.map((content, i) => ({ role: i % 2 ? "assistant" : "user", content })) };
}

/** A Storage over a Map (the unit project has no browser; the e2e test uses Chromium's). */
function memoryStorage(): Storage & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, get length() { return map.size; }, clear: () => map.clear(), getItem: (k) => map.get(k) ?? null, key: (i) => [...map.keys()][i] ?? null, removeItem: (k) => void map.delete(k), setItem: (k, v) => void map.set(k, v) };
}

describe("conversation store", () => {
  it("keeps the most recently used conversations, each with its last messages", () => {
    const list = [conv("old", 1, ["a"]), conv("new", 3, ["a", "b", "c", "d"]), conv("mid", 2, ["a"])];
    const out = boundConversations(list, { conversations: 2, messages: 3, chars: 1000 });
    expect(out.map((c) => c.id)).toEqual(["new", "mid"]);
    expect(out[0]!.messages.map((m) => m.content)).toEqual(["b", "c", "d"]);
  });

  it("drops older conversations past the character bound, and trims the newest's oldest messages if it alone is over", () => {
    const big = "x".repeat(60);
    expect(boundConversations([conv("a", 2, [big]), conv("b", 1, [big])], { conversations: 10, messages: 10, chars: 100 }).map((c) => c.id)).toEqual(["a"]);
    const alone = boundConversations([conv("a", 2, [big, big, "last"])], { conversations: 10, messages: 10, chars: 100 });
    expect(alone[0]!.messages.map((m) => m.content)).toEqual([big, "last"]);
  });

  it("reads back what it wrote, and a damaged or foreign value as empty", () => {
    const s = memoryStorage();
    expect(writeConversations(s, [conv("a", 1, ["hi", "there"])])).toBe(true);
    expect(readConversations(s).map((c) => c.id)).toEqual(["a"]);
    s.setItem(STORAGE_KEY, "{not json");
    expect(readConversations(s)).toEqual([]);
    s.setItem(STORAGE_KEY, JSON.stringify([{ id: 1 }]));
    expect(readConversations(s)).toEqual([]);
    const full = { setItem() { throw new DOMException("quota", "QuotaExceededError"); } };
    expect(writeConversations(full, [conv("a", 1, ["x"])])).toBe(false);
  });

  it("titles a conversation by its first line", () => {
    expect(titleOf("  Hello there\nsecond")).toBe("Hello there");
    expect(titleOf("y".repeat(80))).toHaveLength(60);
    expect(titleOf("   ")).toBe("New conversation");
  });
});
