import { describe, expect, it } from "vitest";
import { ChatError, handleEventData } from "./chat-stream";

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
