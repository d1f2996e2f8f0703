"use client";
/**
 * A model's answer as Markdown (CommonMark + GitHub's tables, strikethrough,
 * task lists) with react-markdown, safely:
 *
 * - raw HTML in the answer is never HTML: react-markdown (without
 *   rehype-raw) turns every HTML node into text, so `<script>` or
 *   `<img onerror=…>` shows as the characters the model wrote;
 * - links go through react-markdown's default URL filter (no `javascript:`),
 *   open in a new tab with no opener and no referrer;
 * - images are not loaded (a model's answer must not make the browser fetch
 *   a URL it chose): they show as a link with their alt text;
 * - code blocks keep their text and get a copy button.
 */
import { memo, type ReactNode } from "react";
import ReactMarkdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import { CopyButton } from "./copy-button";
import styles from "./playground.module.css";

function textOf(node: ReactNode): string {
  if (typeof node === "string" || typeof node === "number") return String(node);
  if (Array.isArray(node)) return node.map(textOf).join("");
  if (node && typeof node === "object" && "props" in node) return textOf((node.props as { children?: ReactNode }).children);
  return "";
}

const components: Components = {
  a: ({ href, children }) => (
    <a href={href} target="_blank" rel="noopener noreferrer nofollow">
      {children}
    </a>
  ),
  img: ({ src, alt }) =>
    typeof src === "string" && src ? (
      <a href={src} target="_blank" rel="noopener noreferrer nofollow">
        [image{alt ? `: ${alt}` : ""}]
      </a>
    ) : (
      <span>[image{alt ? `: ${alt}` : ""}]</span>
    ),
  pre: ({ children }) => {
    const code = textOf(children).replace(/\n$/, "");
    const lang = /language-([\w+-]+)/.exec(((children as { props?: { className?: string } } | null)?.props?.className) ?? "")?.[1];
    return (
      <div className={styles.codeBlock}>
        <div className={styles.codeHead}>
          <span className="faint">{lang ?? "code"}</span>
          <CopyButton text={code} label="Copy code" />
        </div>
        <pre>{children}</pre>
      </div>
    );
  },
  table: ({ children }) => (
    <div className={styles.tableWrap}>
      <table>{children}</table>
    </div>
  ),
};

const plugins = [remarkGfm];

/** Renders `text` (re-parsed only when it changes). */
export const Markdown = memo(function Markdown({ text }: { text: string }) {
  return (
    <div className={styles.markdown} data-testid="markdown">
      <ReactMarkdown remarkPlugins={plugins} components={components}>
        {text}
      </ReactMarkdown>
    </div>
  );
});
