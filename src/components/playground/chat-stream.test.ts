import { afterEach, describe, expect, it, vi } from "vitest";
import { ChatError, handleEventData, RESTART_WAITS, streamChat } from "./chat-stream";

describe("handleEventData", () => {
  it("hands each content delta and llama-server's timings over, and ends at [DONE]", () => {
    const got: string[] = [];
    const timings: unknown[] = [];
    const h = { onContent: (t: string) => got.push(t), onTimings: (t: unknown) => timings.push(t) };
    expect(handleEventData(JSON.stringify({ choices: [{ delta: { role: "assistant", content: null } }] }), h)).toBe(false);
    expect(handleEventData(JSON.stringify({ choices: [{ delta: { content: "he" } }] }), h)).toBe(false);
    expect(handleEventData(JSON.stringify({ choices: [{ delta: { content: "llo" } }] }), h)).toBe(false);
    expect(handleEventData(JSON.stringify({ choices: [{ delta: {}, finish_reason: "stop" }], timings: { predicted_n: 2, predicted_per_second: 50 } }), h)).toBe(false);
    expect(handleEventData(JSON.stringify({ choices: [], usage: { completion_tokens: 2 } }), h)).toBe(false);
    expect(handleEventData("[DONE]", h)).toBe(true);
    expect(got.join("")).toBe("hello");
    expect(timings).toEqual([{ predicted_n: 2, predicted_per_second: 50 }]);
  });

  it("a reasoning model's thinking goes to onReasoning, apart from the answer", () => {
    const answer: string[] = [];
    const thinking: string[] = [];
    const h = { onContent: (t: string) => answer.push(t), onReasoning: (t: string) => thinking.push(t) };
    handleEventData(JSON.stringify({ choices: [{ delta: { reasoning_content: "let me " } }] }), h);
    handleEventData(JSON.stringify({ choices: [{ delta: { reasoning_content: "think" } }] }), h);
    handleEventData(JSON.stringify({ choices: [{ delta: { content: "42" } }] }), h);
    expect(thinking.join("")).toBe("let me think");
    expect(answer.join("")).toBe("42");
  });

  it("an error event inside the stream becomes a ChatError with its message", () => {
    const h = { onContent: () => undefined };
    expect(() => handleEventData(JSON.stringify({ error: { code: 500, message: "the model produced output that does not match", type: "server_error" } }), h)).toThrow(ChatError);
    try {
      handleEventData(JSON.stringify({ error: { code: 500, message: "boom" } }), h);
    } catch (err) {
      expect(err).toMatchObject({ message: "boom", status: 500 });
    }
  });
});

describe("streamChat and a model that restarts after a crash (a stand-in fetch for the gateway's answers)", () => {
  afterEach(() => vi.unstubAllGlobals());
  const restarting = (retryAfter: string) =>
    new Response(JSON.stringify({ error: { message: 'model "m" crashed and restarts in 1 s: killed by SIGKILL', type: "service_unavailable", code: "model_restarting" } }), { status: 503, headers: { "content-type": "application/json", "retry-after": retryAfter } });
  const answer = () => new Response('data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n', { status: 200, headers: { "content-type": "text/event-stream" } });
  const body = { model: "m", messages: [], stream: true as const, stream_options: { include_usage: true as const } };

  it("waits the Retry-After of 503 model_restarting and sends the message again, saying so", async () => {
    const replies = [restarting("1"), answer()];
    const fetched = vi.fn(async () => replies.shift()!);
    vi.stubGlobal("fetch", fetched);
    const got: string[] = [];
    const waits: number[] = [];
    const t0 = Date.now();
    await streamChat(body, new AbortController().signal, { onContent: (t) => got.push(t), onWaiting: (s) => waits.push(s) });
    expect(got.join("")).toBe("hi");
    expect(waits).toEqual([1]);
    expect(fetched).toHaveBeenCalledTimes(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
  });

  it("gives up with the gateway's error after RESTART_WAITS waits, or at once for any other 503 or a Retry-After past 30 s", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => restarting("31")));
    await expect(streamChat(body, new AbortController().signal, { onContent: () => undefined })).rejects.toMatchObject({ status: 503, code: "model_restarting" });
    vi.stubGlobal("fetch", vi.fn(async () => new Response(JSON.stringify({ error: { message: "failed", code: "model_failed" } }), { status: 503, headers: { "retry-after": "1" } })));
    await expect(streamChat(body, new AbortController().signal, { onContent: () => undefined })).rejects.toMatchObject({ code: "model_failed" });
    expect(RESTART_WAITS).toBe(5);
  });

  it("a Stop during the wait ends it at once", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => restarting("20")));
    const abort = new AbortController();
    const p = streamChat(body, abort.signal, { onContent: () => undefined, onWaiting: () => setTimeout(() => abort.abort(new Error("stopped")), 10) });
    await expect(p).rejects.toThrow("stopped");
  });
});
