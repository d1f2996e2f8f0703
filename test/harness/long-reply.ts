/**
 * A reply that streams for tens of seconds through an app's gateway, for tests of what happens while one is
 * under way (a shutdown, a second signal).
 */
import type { AppServer } from "./app-server";

/**
 * Sends a streamed chat completion of `maxTokens` tokens (default 60 000: tens of seconds on the tiny model;
 * `ignore_eos` and a grammar keep it going and valid) to `model` through `app`'s /v1, waits for its first
 * chunk, and reads the rest in the background. `status`: the reply's HTTP status (the first chunk is read only
 * on 200). `text`: everything read after the first chunk (SSE lines), once the stream ends, however it ends.
 */
export async function streamLongReply(app: AppServer, model: string, maxTokens = 60_000): Promise<{ status: number; text: Promise<string> }> {
  const reply = await app.fetch("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: maxTokens, ignore_eos: true, stream: true, grammar: "root ::= [a-z]+" }),
  });
  if (reply.status !== 200) return { status: reply.status, text: reply.text() };
  const reader = reply.body!.getReader();
  await reader.read();
  const decoder = new TextDecoder();
  const text = (async () => {
    let all = "";
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true as const, value: undefined }));
      if (done) return all + decoder.decode();
      all += decoder.decode(value, { stream: true });
    }
  })();
  return { status: reply.status, text };
}
