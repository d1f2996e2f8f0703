"use client";
/**
 * One message of the conversation. The user's text is shown as typed; the
 * model's answer as Markdown (markdown.tsx, loaded lazily: its HTML shows as text), with
 * its figures (time to first token, tokens/s) or the error.
 */
import type { ReactNode } from "react";
import { formatStats } from "./answer-stats";
import type { StoredMessage } from "./conversation-store";
import { AnswerText } from "./lazy-markdown";
import styles from "./playground.module.css";

export function MessageView({ message, streaming, children }: { message: StoredMessage; streaming?: boolean; children?: ReactNode }) {
  const user = message.role === "user";
  return (
    <article className={styles.message} data-role={message.role} data-testid={user ? "user-message" : "assistant-message"} data-streaming={streaming ? "true" : undefined} aria-busy={streaming || undefined}>
      <h3 className="visually-hidden">{user ? "You" : "Model"}</h3>
      {user ? <div className={styles.userText}>{message.content}</div> : null}
      {!user && message.reasoning ? (
        <details className={styles.reasoning} data-testid="answer-reasoning" open={streaming && !message.content ? true : undefined}>
          <summary>Thinking</summary>
          <div className={styles.userText}>{message.reasoning}</div>
        </details>
      ) : null}
      {!user && message.content ? (
        <div data-testid="answer-text" data-chars={message.content.length}>
          <AnswerText text={message.content} />
        </div>
      ) : null}
      {children}
      {message.error ? (
        <p className={styles.error} role="alert" data-testid="answer-error">
          {message.error}
        </p>
      ) : null}
      {!user && (message.stats || message.stopped) ? (
        <p className={styles.stats} data-testid="answer-stats">
          {message.stopped ? <span className="tag">stopped</span> : null} {message.stats ? formatStats(message.stats) : null}
        </p>
      ) : null}
    </article>
  );
}
