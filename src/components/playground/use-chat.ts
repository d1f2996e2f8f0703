"use client";
/**
 * Sending a message and streaming its answer into the conversation:
 * the user's message and an empty answer are added at once; the answer's
 * text is written into the conversation at most every FLUSH_MS while it
 * streams (Markdown is re-parsed on each write); at the end the answer gets
 * its figures, or `stopped`, or the error. One answer at a time.
 */
import { useCallback, useRef, useState } from "react";
import { answerStats, type StreamClock } from "./answer-stats";
import { buildChatRequest, type ChatRequestBody, type ChatSettings, type ChatTurn, type SettingsErrors } from "./chat-request";
import { ChatError, streamChat } from "./chat-stream";
import type { Conversations } from "./use-conversations";

const FLUSH_MS = 60;

export interface ActiveAnswer {
  conversationId: string;
  model: string;
  /** Epoch ms, for the loading clock. */
  sentAt: number;
  /** The model was not ready when the message was sent. */
  loading: boolean;
  /** The model crashed and restarts by itself: the message waits for it (the gateway's Retry-After) and goes again. */
  restarting: boolean;
  /** When the message goes again (epoch ms: the Retry-After's end); null when not waiting for a restart. */
  restartAt: number | null;
  firstToken: boolean;
}

export interface Chat {
  active: ActiveAnswer | null;
  errors: SettingsErrors;
  /** The last request sent (for "request as code"). */
  lastBody: ChatRequestBody | null;
  /** Sends `text` to `model`; false when the settings are invalid (errors says why). */
  send(model: string, text: string, settings: ChatSettings, modelReady: boolean): boolean;
  stop(): void;
}

/** The turns to send: what the user saw, without failed answers. */
export function historyOf(messages: readonly { role: "user" | "assistant"; content: string; error?: string | undefined }[]): ChatTurn[] {
  return messages.filter((m) => m.role === "user" || m.content.length > 0).map((m) => ({ role: m.role, content: m.content }));
}

export function useChat(conversations: Conversations): Chat {
  const [active, setActive] = useState<ActiveAnswer | null>(null);
  const [errors, setErrors] = useState<SettingsErrors>({});
  const [lastBody, setLastBody] = useState<ChatRequestBody | null>(null);
  const controller = useRef<AbortController | null>(null);

  const send = useCallback(
    (model: string, text: string, settings: ChatSettings, modelReady: boolean) => {
      if (controller.current) return false;
      const conv = conversations.current;
      const turns = [...historyOf(conv?.messages ?? []), { role: "user" as const, content: text }];
      const built = buildChatRequest(model, settings, turns);
      if (!built.ok) {
        setErrors(built.errors);
        return false;
      }
      setErrors({});
      setLastBody(built.body);
      const id = conv?.id ?? conversations.create(model);
      const { update } = conversations;
      update(id, model, (ms) => [...ms, { role: "user", content: text }, { role: "assistant", content: "" }]);
      const abort = new AbortController();
      controller.current = abort;
      const sentAt = Date.now();
      const clock: StreamClock = { sentAt: performance.now(), firstContentAt: null, lastContentAt: null, contentChunks: 0, timings: null, loaded: !modelReady };
      setActive({ conversationId: id, model, sentAt, loading: !modelReady, restarting: false, restartAt: null, firstToken: false });

      let text_ = "";
      let reasoning = "";
      let timer: ReturnType<typeof setTimeout> | null = null;
      const setLast = (patch: { content?: string; reasoning?: string; error?: string; stopped?: boolean; stats?: ReturnType<typeof answerStats> }) =>
        update(id, model, (ms) => {
          const last = ms[ms.length - 1];
          return last && last.role === "assistant" ? [...ms.slice(0, -1), { ...last, ...patch }] : ms;
        });
      const flush = () => {
        timer = null;
        setLast(reasoning ? { content: text_, reasoning } : { content: text_ });
      };
      const firstToken = () => {
        if (clock.firstContentAt !== null) return;
        clock.firstContentAt = performance.now();
        setActive((a) => (a ? { ...a, firstToken: true } : a));
      };

      void streamChat(built.body, abort.signal, {
        onWaiting(seconds) {
          clock.loaded = true;
          const restartAt = Date.now() + seconds * 1000;
          setActive((a) => (a ? { ...a, loading: true, restarting: true, restartAt } : a));
        },
        onContent(t) {
          firstToken();
          clock.lastContentAt = performance.now();
          clock.contentChunks += 1;
          text_ += t;
          timer ??= setTimeout(flush, FLUSH_MS);
        },
        onReasoning(t) {
          // A thinking token is the model's first token too (what the user waits for is its output starting).
          firstToken();
          reasoning += t;
          timer ??= setTimeout(flush, FLUSH_MS);
        },
        onTimings(t) {
          clock.timings = t;
        },
      })
        .then(
          () => setLast({ content: text_, ...(reasoning ? { reasoning } : {}), stats: answerStats(clock) }),
          (err: unknown) => {
            if (abort.signal.aborted) setLast({ content: text_, ...(reasoning ? { reasoning } : {}), stopped: true, stats: answerStats(clock) });
            else setLast({ content: text_, ...(reasoning ? { reasoning } : {}), error: err instanceof ChatError ? err.message : `the request failed: ${err instanceof Error ? err.message : String(err)}`, ...(clock.contentChunks > 0 ? { stats: answerStats(clock) } : {}) });
          },
        )
        .finally(() => {
          if (timer) clearTimeout(timer);
          controller.current = null;
          setActive(null);
        });
      return true;
    },
    [conversations],
  );

  const stop = useCallback(() => controller.current?.abort(), []);

  return { active, errors, lastBody, send, stop };
}
