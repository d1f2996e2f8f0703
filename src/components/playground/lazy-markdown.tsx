"use client";
/**
 * The Markdown renderer (react-markdown + remark-gfm, about 50 kB gzipped)
 * is fetched after the playground's first paint, as its own chunk. Until it
 * is there an answer shows as plain text (React escapes it): never as HTML.
 */
import { lazy, Suspense } from "react";
import styles from "./playground.module.css";

const Markdown = lazy(() => import("./markdown").then((m) => ({ default: m.Markdown })));

export function AnswerText({ text }: { text: string }) {
  return (
    <Suspense fallback={<div className={styles.userText}>{text}</div>}>
      <Markdown text={text} />
    </Suspense>
  );
}
