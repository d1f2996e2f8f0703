"use client";
/**
 * The playground: chat with any model of the fleet through the gateway, as
 * every client does (POST /v1/chat/completions on the app's own port; the
 * dashboard's session is the credential). Conversations stay in this
 * browser (localStorage). Heavy parts (Markdown) load with this page only.
 */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import type { StatusRow } from "~/components/fleet/fleet-view";
import { useServerActions } from "~/components/fleet/use-server-actions";
import { useLive } from "~/components/live/live-provider";
import { firstClickOnly } from "~/components/ui/first-click";
import { useTRPC } from "~/trpc/client";
import { DEFAULT_SETTINGS, buildChatRequest, type ChatSettings } from "./chat-request";
import { LoadProgress } from "./load-progress";
import { MessageView } from "./message-view";
import { choicesByHost, type ModelChoice } from "./model-choice";
import { ModelPicker, ModelStateLine } from "./model-picker";
import { RequestCode } from "./request-code";
import { sendBlock } from "./send-block";
import { SettingsPanel } from "./settings-panel";
import { historyOf, useChat } from "./use-chat";
import { useConversations } from "./use-conversations";
import { useLoadProgress } from "./use-load-progress";
import { useQueue } from "./use-queue";
import { waitingText } from "./waiting-text";
import styles from "./playground.module.css";

export function Playground({ initialModel }: { initialModel?: string | undefined }) {
  const trpc = useTRPC();
  const { connection } = useLive();
  const status = useQuery({ ...trpc.servers.status.queryOptions(), refetchInterval: connection !== "live" ? 5000 : false });
  const groups = useMemo(() => choicesByHost((status.data ?? []) as StatusRow[]), [status.data]);
  const choices = useMemo(() => new Map(groups.flatMap((g) => g.choices.map((c): [string, ModelChoice] => [c.name, c]))), [groups]);

  const [streamingFlag, setStreamingFlag] = useState(false);
  const conversations = useConversations(streamingFlag);
  const chat = useChat(conversations);
  useEffect(() => setStreamingFlag(chat.active !== null), [chat.active]);

  const [model, setModel] = useState(initialModel ?? "");
  const [settings, setSettings] = useState<ChatSettings>(DEFAULT_SETTINGS);
  const [draft, setDraft] = useState("");
  const [baseUrl, setBaseUrl] = useState("/v1");
  const input = useRef<HTMLTextAreaElement>(null);
  const log = useRef<HTMLDivElement>(null);
  useEffect(() => setBaseUrl(`${window.location.origin}/v1`), []);

  // No model chosen yet: the current conversation's, else the first ready one, else the first that can be picked.
  useEffect(() => {
    if (model || !status.data || !conversations.loaded) return;
    const all = [...choices.values()];
    const fromConv = conversations.current?.model;
    const pick = (fromConv && choices.get(fromConv)?.pickable ? fromConv : undefined) ?? all.find((c) => c.readiness === "ready")?.name ?? all.find((c) => c.pickable)?.name;
    if (pick) setModel(pick);
  }, [model, status.data, conversations.loaded, conversations.current, choices]);

  const choice = choices.get(model) ?? null;
  const { start } = useServerActions(choice?.id ?? null, choice?.name);

  const messages = conversations.current?.messages ?? [];
  const active = chat.active && chat.active.conversationId === conversations.current?.id ? chat.active : null;
  const busy = chat.active !== null;
  const loadProgress = useLoadProgress(chat.active ? (choices.get(chat.active.model)?.id ?? null) : null);
  // Read only while a message waits for its first token: the line below names the queue it waits in.
  const queue = useQueue(chat.active && !chat.active.firstToken ? (choices.get(chat.active.model)?.id ?? null) : null);
  // One announcement when an answer ends (the streaming text itself is not a live region).
  const [announcement, setAnnouncement] = useState("");
  const wasBusy = useRef(false);
  useEffect(() => {
    if (wasBusy.current && !busy) {
      const last = conversations.current?.messages.at(-1);
      setAnnouncement(last?.error ? `The request failed: ${last.error}` : last?.stopped ? "Answer stopped." : "Answer complete.");
    }
    wasBusy.current = busy;
  }, [busy, conversations.current]);
  // Why a message cannot go to the chosen model (failed, stopped, …), said beside the greyed-out Send once there is one.
  const block = sendBlock(choice);
  const hasDraft = draft.trim().length > 0;
  const canSend = block === null && !busy && hasDraft;

  // Follow the answer as it grows, unless the user scrolled up to read.
  const lastLength = messages[messages.length - 1]?.content.length ?? 0;
  useEffect(() => {
    const el = log.current;
    if (!el) return;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 120) el.scrollTop = el.scrollHeight;
  }, [lastLength, messages.length]);

  // Send and Stop take each other's place: keep the keyboard focus from falling to the page's start.
  const stopButton = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (document.activeElement && document.activeElement !== document.body) return;
    if (busy) stopButton.current?.focus();
    else input.current?.focus();
  }, [busy]);

  const submit = (e?: FormEvent) => {
    e?.preventDefault();
    if (!canSend || !choice) {
      // Enter on a message that cannot go: told (the note beside Send says it too), not silently dropped.
      // The note points to the error in the state line; read aloud, the error itself follows.
      if (block && hasDraft && !busy) setAnnouncement(`Not sent. ${block.text}${block.start && choice?.error ? ` Last error: ${choice.error}` : ""}`);
      return;
    }
    if (chat.send(choice.name, draft, settings, choice.readiness === "ready")) setDraft("");
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === "Escape" && busy) {
      e.preventDefault();
      chat.stop();
    }
  };
  const selectConversation = (id: string) => {
    conversations.select(id || null);
    const m = conversations.list.find((c) => c.id === id)?.model;
    if (m && choices.get(m)?.pickable) setModel(m);
  };

  // The request as code: the last one sent, or the one the form would send now.
  const preview = useMemo(() => {
    if (chat.lastBody && !draft) return chat.lastBody;
    if (!model) return null;
    const built = buildChatRequest(model, settings, [...historyOf(messages), { role: "user", content: draft || "Hello!" }]);
    return built.ok ? built.body : chat.lastBody;
  }, [chat.lastBody, draft, model, settings, messages]);

  return (
    <>
      <div className="page-head">
        <h1>Playground</h1>
        <div className={styles.convBar}>
          <label htmlFor="pg-conversation" className="visually-hidden">
            Conversation
          </label>
          <select id="pg-conversation" data-testid="conversation-picker" value={conversations.current?.id ?? ""} onChange={(e) => selectConversation(e.target.value)} disabled={busy}>
            <option value="">{conversations.list.length === 0 ? "No saved conversations" : "New conversation"}</option>
            {conversations.list.map((c) => (
              <option key={c.id} value={c.id}>
                {c.title} · {c.model}
              </option>
            ))}
          </select>
          <button type="button" className="btn" onClick={() => conversations.select(null)} disabled={busy || !conversations.current}>
            New
          </button>
          <button type="button" className="btn btn-danger" onClick={() => conversations.current && conversations.remove(conversations.current.id)} disabled={busy || !conversations.current}>
            Delete
          </button>
        </div>
      </div>
      <p className="muted" style={{ fontSize: "0.85rem" }}>
        Messages go through the gateway (<code>/v1/chat/completions</code>) as any client&apos;s do. Conversations are kept in this browser only{conversations.storeFailed ? <strong> (this browser refused to store them: they last until the page closes)</strong> : null}.
      </p>

      <div className={styles.layout}>
        <section className={`panel ${styles.chat}`} aria-labelledby="pg-chat-title">
          <h2 id="pg-chat-title" className="visually-hidden">
            Chat
          </h2>
          <ModelPicker groups={groups} value={model} onChange={setModel} disabled={busy} />
          <ModelStateLine choice={choice} onStart={() => choice && start.mutate({ id: choice.id })} starting={start.isPending} />

          <div ref={log} className={styles.log} data-testid="conversation" tabIndex={0} aria-label="Conversation">
            {messages.length === 0 ? <p className="muted">{groups.length === 0 && status.data ? "No models yet: add one on the Discover page." : "Send a message to start."}</p> : null}
            {messages.map((m, i) => {
              const streaming = active !== null && i === messages.length - 1 && m.role === "assistant";
              return (
                <MessageView key={i} message={m} streaming={streaming}>
                  {streaming && !active.firstToken ? (
                    active.loading || choices.get(active.model)?.readiness === "loading" ? (
                      <LoadProgress model={active.model} host={choices.get(active.model)?.host ?? "its host"} since={active.sentAt} restarting={active.restarting} restartAt={active.restartAt} {...(loadProgress !== undefined ? { progress: loadProgress } : {})} />
                    ) : (
                      <p className="muted" data-testid="waiting">
                        {waitingText(active.model, queue)}
                      </p>
                    )
                  ) : null}
                </MessageView>
              );
            })}
          </div>

          <p className="visually-hidden" role="status" data-testid="announcement">
            {announcement}
          </p>
          <form className={styles.composer} onSubmit={submit}>
            <div className="field">
              <label htmlFor="pg-message">Message</label>
              <textarea ref={input} id="pg-message" data-testid="message-input" rows={3} value={draft} onChange={(e) => setDraft(e.target.value)} onKeyDown={onKeyDown} placeholder={choice ? `Message ${choice.name}` : "Choose a model first"} aria-describedby="pg-message-hint" />
              <span id="pg-message-hint" className="hint">
                Enter sends, Shift+Enter starts a new line{busy ? ", Escape stops the answer" : ""}.
              </span>
            </div>
            <div className={styles.composerActions}>
              {block && hasDraft && !busy ? (
                <p id="pg-send-block" className={styles.sendBlock} data-testid="send-blocked">
                  <span>{block.text}</span>
                  {block.start && choice ? (
                    <button type="button" className="btn btn-sm btn-primary" onClick={firstClickOnly(() => start.mutate({ id: choice.id }))} disabled={start.isPending} aria-busy={start.isPending} data-testid="send-blocked-start">
                      Start {choice.name}
                      <span className="spin" data-on={start.isPending} aria-hidden="true" />
                    </button>
                  ) : null}
                </p>
              ) : null}
              {busy ? (
                <button ref={stopButton} type="button" className="btn btn-danger" data-testid="stop" onClick={chat.stop}>
                  Stop
                </button>
              ) : (
                <button type="submit" className="btn btn-primary" data-testid="send" disabled={!canSend} aria-describedby={block && hasDraft ? "pg-send-block" : undefined}>
                  Send
                </button>
              )}
            </div>
          </form>
        </section>

        <div className={styles.side}>
          <SettingsPanel value={settings} onChange={setSettings} errors={chat.errors} />
          <RequestCode body={preview} baseUrl={baseUrl} />
        </div>
      </div>
    </>
  );
}
