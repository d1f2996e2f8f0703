import { describe, expect, it } from "vitest";
import { AnswerTail, TAIL_BYTES, tokensOfAnswerTail } from "./answer-usage";

describe("tokens of an answer", () => {
  it("reads llama-server's timings: prompt counts cached and processed tokens", () => {
    const body = JSON.stringify({ choices: [{ message: { content: "hi" } }], usage: { completion_tokens: 5, prompt_tokens: 12, total_tokens: 17, prompt_tokens_details: { cached_tokens: 4 } }, timings: { cache_n: 4, prompt_n: 8, prompt_ms: 1.2, predicted_n: 5, predicted_ms: 3 } });
    expect(tokensOfAnswerTail(body)).toEqual({ prompt: 12, cachedPrompt: 4, completion: 5 });
  });
  it("takes the last event of a stream, and usage when there are no timings", () => {
    const sse = 'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"choices":[],"timings":{"cache_n":0,"prompt_n":3,"predicted_n":7}}\n\ndata: [DONE]\n\n';
    expect(tokensOfAnswerTail(sse)).toEqual({ prompt: 3, cachedPrompt: 0, completion: 7 });
    expect(tokensOfAnswerTail('{"data":[{"embedding":[0.1]}],"usage":{"prompt_tokens":9,"total_tokens":9}}')).toEqual({ prompt: 9, cachedPrompt: 0, completion: 0 });
  });
  it("is not fooled by generated text and says null when there is nothing", () => {
    const forged = JSON.stringify({ content: '"timings":{"cache_n":0,"prompt_n":999,"predicted_n":999}' });
    expect(tokensOfAnswerTail(forged)).toBeNull();
    expect(tokensOfAnswerTail('{"error":{"code":500}}')).toBeNull();
  });
  it("keeps only a bounded tail of a long answer", () => {
    const tail = new AnswerTail();
    tail.push(Buffer.from("x".repeat(3 * TAIL_BYTES)));
    for (let i = 0; i < 100; i++) tail.push(Buffer.from("y".repeat(100)));
    tail.push(Buffer.from('"timings":{"cache_n":1,"prompt_n":2,"predicted_n":3}}'));
    expect(tail.tokens()).toEqual({ prompt: 3, cachedPrompt: 1, completion: 3 });
    // What it holds: the last TAIL_BYTES and at most one chunk more.
    expect((tail as unknown as { size: number }).size).toBeLessThanOrEqual(TAIL_BYTES + 100);
  });
});
