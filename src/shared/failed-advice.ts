/**
 * Whether a failed model's last error already says how to start it again (a held port's advice ends "…, then
 * start it again": start-outcome.ts PORT_HELD_ADVICE), so that what tells it (the gateway's 503 model_failed, the
 * Playground's note beside Send) adds no advice of its own after it. Plain data, no React (the gateway imports it).
 */
import { errorReason } from "synapse-host-agent/error-text";

/** `lastError`: the status's last error, whole (its first line is read); false for null or empty. */
export function errorSaysStartAgain(lastError: string | null | undefined): boolean {
  return /start it again\s*$/.test(errorReason(lastError));
}
