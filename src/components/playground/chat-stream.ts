/**
 * One streamed chat completion through the gateway, from the browser:
 * `fetch` POST /v1/chat/completions (same origin, so the dashboard's session
 * cookie is the credential; no key is ever put in the page), the response's
 * Server-Sent Events parsed with `eventsource-parser`, each `delta.content`
 * handed to `onContent` (and a reasoning model's `delta.reasoning_content`,
 * as llama-server streams it with --reasoning-format, to `onReasoning`), llama-server's `timings` and the usage to
 * `onTimings`. Aborting `signal` cancels the fetch: the gateway sees the
 * client go and cancels the server's work.
 *
 * Not OpenAI's client: it always sends `Authorization: Bearer <apiKey>`, and
 * with SYNAPSE_API_TOKEN set the gateway refuses a bearer that is neither a
 * key nor the token before it looks at the session cookie; a key in the page
 * is what this must not have.
 *
 * Errors: an HTTP error answer becomes a ChatError with the gateway's OpenAI
 * error (status, code, message); an `error` event inside the stream too.
 *
 * A model that crashed and restarts by itself (503 `model_restarting`, its
 * Retry-After the backoff's end) is waited for and asked again, as OpenAI's
 * clients do with Retry-After: up to RESTART_WAITS times, each wait at most
 * RESTART_WAIT_MAX_S, `onWaiting` told each time (the page says "restarting").
 */
import { createParser } from "eventsource-parser";
import type { ServerTimings } from "./answer-stats";
import type { ChatRequestBody } from "./chat-request";

export const CHAT_PATH = "/v1/chat/completions";

export class ChatError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string | null,
  ) {
    super(message);
    this.name = "ChatError";
  }
}

/** How many times a `model_restarting` answer is waited for and the message sent again. */
export const RESTART_WAITS = 5;
/** The longest Retry-After waited for (s); a longer one is shown as the error. */
export const RESTART_WAIT_MAX_S = 30;

export interface StreamHandlers {
  onContent(text: string): void;
  /** The model restarts after a crash: the message is sent again in `seconds` (the gateway's Retry-After). */
  onWaiting?(seconds: number, message: string): void;
  onReasoning?(text: string): void;
  onTimings?(timings: ServerTimings): void;
}

interface Chunk {
  choices?: { delta?: { content?: string | null; reasoning_content?: string | null } }[];
  timings?: ServerTimings;
  error?: { message?: string; code?: string | number; type?: string };
}

/** The OpenAI error in a failed answer's body, or the HTTP status text. */
async function errorOf(res: Response): Promise<ChatError> {
  const text = await res.text().catch(() => "");
  try {
    const e = (JSON.parse(text) as Chunk).error;
    if (e?.message) return new ChatError(e.message, res.status, e.code === undefined ? null : String(e.code));
  } catch {
    // not JSON: fall through
  }
  return new ChatError(`HTTP ${res.status}${text ? `: ${text.slice(0, 300)}` : ""}`, res.status, null);
}

/** Handles one SSE data field; true at `[DONE]`. Throws a ChatError for an error event. */
export function handleEventData(data: string, handlers: StreamHandlers): boolean {
  if (data === "[DONE]") return true;
  let chunk: Chunk;
  try {
    chunk = JSON.parse(data) as Chunk;
  } catch {
    return false; // not JSON (a comment-like line): nothing to show
  }
  if (chunk.error) throw new ChatError(chunk.error.message ?? "the server reported an error", typeof chunk.error.code === "number" ? chunk.error.code : 500, chunk.error.type ?? null);
  const delta = chunk.choices?.[0]?.delta;
  if (typeof delta?.reasoning_content === "string" && delta.reasoning_content.length > 0) handlers.onReasoning?.(delta.reasoning_content);
  if (typeof delta?.content === "string" && delta.content.length > 0) handlers.onContent(delta.content);
  if (chunk.timings) handlers.onTimings?.(chunk.timings);
  return false;
}

/** Streams one answer; resolves when the stream ends, rejects with ChatError or the abort. */
export async function streamChat(body: ChatRequestBody, signal: AbortSignal, handlers: StreamHandlers): Promise<void> {
  let res: Response;
  for (let waits = 0; ; waits++) {
    res = await fetch(CHAT_PATH, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      credentials: "same-origin",
      body: JSON.stringify(body),
      signal,
    });
    if (res.ok) break;
    const err = await errorOf(res);
    const retryS = Number(res.headers.get("retry-after"));
    if (err.code !== "model_restarting" || waits >= RESTART_WAITS || !(retryS > 0 && retryS <= RESTART_WAIT_MAX_S)) throw err;
    handlers.onWaiting?.(retryS, err.message);
    await abortableSleep(retryS * 1000, signal);
  }
  if (!res.body) throw new ChatError("the answer has no body", res.status, null);
  let done = false;
  let failure: unknown = null;
  const parser = createParser({
    onEvent(event) {
      if (done || failure) return;
      try {
        done = handleEventData(event.data, handlers);
      } catch (err) {
        failure = err;
      }
    },
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (!done && !failure) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      parser.feed(value);
    }
  } finally {
    // Done early ([DONE] or an error): let the connection go.
    if (!signal.aborted) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  if (failure) throw failure;
}

/** Resolves after `ms`, or rejects with the abort's reason when `signal` aborts first. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
