"use client";
/**
 * The conversations in memory and in localStorage (conversation-store.ts):
 * read once after mount (the server renders none), written whenever they
 * change and no answer is streaming (a stream writes once, at its end).
 */
import { useCallback, useEffect, useRef, useState } from "react";
import { boundConversations, readConversations, titleOf, writeConversations, type Conversation, type StoredMessage } from "./conversation-store";

function newId(): string {
  return typeof crypto !== "undefined" && "randomUUID" in crypto ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`;
}

export interface Conversations {
  list: Conversation[];
  current: Conversation | null;
  /** False until localStorage has been read. */
  loaded: boolean;
  /** The browser refused to store them (quota, storage disabled). */
  storeFailed: boolean;
  select(id: string | null): void;
  /** A new empty conversation, made current; returns its id. */
  create(model: string): string;
  remove(id: string): void;
  /** Changes one conversation's messages (and model); the title comes from its first user message. */
  update(id: string, model: string, fn: (messages: StoredMessage[]) => StoredMessage[]): void;
}

export function useConversations(streaming: boolean): Conversations {
  const [list, setList] = useState<Conversation[]>([]);
  const [currentId, setCurrentId] = useState<string | null>(null);
  const [loaded, setLoaded] = useState(false);
  const [storeFailed, setStoreFailed] = useState(false);
  const skipWrite = useRef(true);

  useEffect(() => {
    const stored = readConversations(window.localStorage);
    setList(stored);
    setCurrentId(stored[0]?.id ?? null);
    setLoaded(true);
  }, []);

  useEffect(() => {
    if (!loaded || streaming) return;
    // The first run after loading would only write back what was read.
    if (skipWrite.current) {
      skipWrite.current = false;
      return;
    }
    setStoreFailed(!writeConversations(window.localStorage, list));
  }, [list, loaded, streaming]);

  const create = useCallback((model: string) => {
    const id = newId();
    const at = Date.now();
    setList((l) => boundConversations([{ id, title: "New conversation", model, createdAt: at, updatedAt: at, messages: [] }, ...l]));
    setCurrentId(id);
    return id;
  }, []);

  const remove = useCallback((id: string) => {
    setList((l) => l.filter((c) => c.id !== id));
    setCurrentId((cur) => (cur === id ? null : cur));
  }, []);

  const update = useCallback((id: string, model: string, fn: (messages: StoredMessage[]) => StoredMessage[]) => {
    // Bounded in memory as in storage: what is sent as history is what would be kept.
    setList((l) =>
      boundConversations(
        l.map((c) => {
          if (c.id !== id) return c;
          const messages = fn(c.messages);
          const firstUser = messages.find((m) => m.role === "user");
          return { ...c, model, messages, updatedAt: Date.now(), title: firstUser ? titleOf(firstUser.content) : c.title };
        }),
      ),
    );
  }, []);

  return { list, current: list.find((c) => c.id === currentId) ?? null, loaded, storeFailed, select: setCurrentId, create, remove, update };
}
