import { describe, expect, it } from "vitest";
import { buildChatRequest, DEFAULT_SETTINGS, type ChatSettings } from "./chat-request";

const turns = [{ role: "user" as const, content: "hi" }];
const with_ = (s: Partial<ChatSettings>): ChatSettings => ({ ...DEFAULT_SETTINGS, ...s });

describe("buildChatRequest", () => {
  it("sends the conversation streamed, with the server's defaults when fields are empty", () => {
    const r = buildChatRequest("tiny", DEFAULT_SETTINGS, turns);
    expect(r).toEqual({ ok: true, body: { model: "tiny", messages: [{ role: "user", content: "hi" }], stream: true, stream_options: { include_usage: true } } });
  });

  it("puts the system prompt first and converts temperature and max tokens to numbers", () => {
    const r = buildChatRequest("tiny", with_({ systemPrompt: "Be brief.", temperature: "0.2", maxTokens: "64" }), turns);
    expect(r.ok && r.body).toMatchObject({ messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "hi" }], temperature: 0.2, max_tokens: 64 });
  });

  it("sends a grammar as llama-server's `grammar` and a JSON schema as OpenAI's response_format", () => {
    const g = buildChatRequest("tiny", with_({ constraint: "grammar", grammar: 'root ::= "yes"' }), turns);
    expect(g.ok && g.body.grammar).toBe('root ::= "yes"');
    const j = buildChatRequest("tiny", with_({ constraint: "json_schema", jsonSchema: '{"type":"object"}', grammar: "ignored" }), turns);
    expect(j.ok && j.body).toMatchObject({ response_format: { type: "json_schema", json_schema: { name: "answer", schema: { type: "object" } } } });
    expect(j.ok && "grammar" in j.body).toBe(false);
  });

  it("names each bad field and builds nothing", () => {
    const r = buildChatRequest("tiny", with_({ temperature: "3", maxTokens: "0", constraint: "json_schema", jsonSchema: "{nope" }), turns);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(Object.keys(r.errors).sort()).toEqual(["jsonSchema", "maxTokens", "temperature"]);
    expect(r.errors.jsonSchema).toMatch(/not valid JSON/);
    expect(buildChatRequest("tiny", with_({ constraint: "json_schema", jsonSchema: "[1]" }), turns)).toMatchObject({ ok: false, errors: { jsonSchema: "a JSON schema is a JSON object" } });
    expect(buildChatRequest("tiny", with_({ constraint: "grammar", grammar: "  " }), turns)).toMatchObject({ ok: false, errors: { grammar: expect.stringMatching(/GBNF/) } });
    expect(buildChatRequest("tiny", with_({ maxTokens: "1.5" }), turns).ok).toBe(false);
    expect(buildChatRequest("tiny", with_({ temperature: "abc" }), turns).ok).toBe(false);
  });
});
