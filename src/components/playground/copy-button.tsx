"use client";
import { useEffect, useState } from "react";
import { copyText } from "./copy-text";

/** A button that copies `text` and says so for two seconds (announced to screen readers). */
export function CopyButton({ text, label = "Copy", className }: { text: string; label?: string; className?: string }) {
  const [done, setDone] = useState<"copied" | "failed" | null>(null);
  useEffect(() => {
    if (!done) return;
    const t = setTimeout(() => setDone(null), 2000);
    return () => clearTimeout(t);
  }, [done]);
  return (
    <button type="button" className={`btn btn-sm ${className ?? ""}`} onClick={() => void copyText(text).then((ok) => setDone(ok ? "copied" : "failed"))}>
      <span aria-live="polite">{done === "copied" ? "Copied" : done === "failed" ? "Select and copy" : label}</span>
    </button>
  );
}
