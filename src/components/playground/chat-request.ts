/**
 * The request the playground sends: an OpenAI chat completion body built
 * from the form (system prompt, temperature, max tokens, a GBNF grammar or a
 * JSON schema) and the conversation so far. Pure; every field's problem is
 * returned by name, so the form can show it beside its input and send nothing.
 *
 * Constraints, as llama-server takes them: `grammar` (GBNF, llama-server's own
 * field) or `response_format: {type: "json_schema", json_schema: {schema}}`
 * (OpenAI's form, which llama-server turns into a grammar).
 */

export type Constraint = "none" | "grammar" | "json_schema";

/** What the form holds: strings as typed (empty = the server's default). */
export interface ChatSettings {
  systemPrompt: string;
  temperature: string;
  maxTokens: string;
  constraint: Constraint;
  grammar: string;
  jsonSchema: string;
}

export const DEFAULT_SETTINGS: ChatSettings = { systemPrompt: "", temperature: "", maxTokens: "", constraint: "none", grammar: "", jsonSchema: "" };

export interface ChatTurn {
  role: "user" | "assistant";
  content: string;
}

export interface ChatRequestBody {
  model: string;
  messages: { role: "system" | "user" | "assistant"; content: string }[];
  stream: true;
  stream_options: { include_usage: true };
  temperature?: number;
  max_tokens?: number;
  grammar?: string;
  response_format?: { type: "json_schema"; json_schema: { name: string; schema: Record<string, unknown> } };
}

export type SettingsField = "temperature" | "maxTokens" | "grammar" | "jsonSchema";
export type SettingsErrors = Partial<Record<SettingsField, string>>;

export type BuildResult = { ok: true; body: ChatRequestBody } | { ok: false; errors: SettingsErrors };

/** Temperature 0-2 (OpenAI's range); max tokens a whole number from 1. */
export function checkSettings(s: ChatSettings): SettingsErrors {
  const errors: SettingsErrors = {};
  const t = s.temperature.trim();
  if (t !== "") {
    const n = Number(t);
    if (!Number.isFinite(n) || n < 0 || n > 2) errors.temperature = "a number from 0 to 2 (or empty for the server's default)";
  }
  const m = s.maxTokens.trim();
  if (m !== "" && !/^[1-9]\d{0,6}$/.test(m)) errors.maxTokens = "a whole number from 1 (or empty: until the model stops or the context is full)";
  if (s.constraint === "grammar" && s.grammar.trim() === "") errors.grammar = 'write a GBNF grammar (e.g. root ::= "yes" | "no"), or choose no constraint';
  if (s.constraint === "json_schema") {
    const parsed = parseSchema(s.jsonSchema);
    if (typeof parsed === "string") errors.jsonSchema = parsed;
  }
  return errors;
}

/** The schema object, or what is wrong with the text. */
function parseSchema(text: string): Record<string, unknown> | string {
  if (text.trim() === "") return 'write a JSON schema (e.g. {"type": "object"}), or choose no constraint';
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return `not valid JSON: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "a JSON schema is a JSON object";
  return v as Record<string, unknown>;
}

/** The body for /v1/chat/completions, streamed; or the settings' problems. */
export function buildChatRequest(model: string, settings: ChatSettings, turns: readonly ChatTurn[]): BuildResult {
  const errors = checkSettings(settings);
  if (Object.keys(errors).length > 0) return { ok: false, errors };
  const system = settings.systemPrompt.trim();
  const body: ChatRequestBody = {
    model,
    messages: [...(system ? [{ role: "system" as const, content: settings.systemPrompt }] : []), ...turns.map((t) => ({ role: t.role, content: t.content }))],
    stream: true,
    stream_options: { include_usage: true },
  };
  if (settings.temperature.trim() !== "") body.temperature = Number(settings.temperature.trim());
  if (settings.maxTokens.trim() !== "") body.max_tokens = Number(settings.maxTokens.trim());
  if (settings.constraint === "grammar") body.grammar = settings.grammar;
  if (settings.constraint === "json_schema") body.response_format = { type: "json_schema", json_schema: { name: "answer", schema: parseSchema(settings.jsonSchema) as Record<string, unknown> } };
  return { ok: true, body };
}
