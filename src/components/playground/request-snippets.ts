/**
 * The playground's last request as code a user can copy: a curl command and
 * OpenAI client code (JavaScript and Python) against the gateway's base URL.
 * The key is always a placeholder, `$SYNAPSE_API_KEY` / an environment
 * variable: the dashboard's session or token never appears in the text.
 * Pure.
 */
import type { ChatRequestBody } from "./chat-request";

/** The environment variable the snippets read the key from. */
export const KEY_VARIABLE = "SYNAPSE_API_KEY";

/** A POSIX shell single-quoted word: nothing inside is expanded. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function curlCommand(baseUrl: string, body: ChatRequestBody): string {
  return [
    `curl ${shellQuote(`${baseUrl}/chat/completions`)} \\`,
    `  -H "Authorization: Bearer $${KEY_VARIABLE}" \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -d ${shellQuote(JSON.stringify(body, null, 2))}`,
  ].join("\n");
}

export function javascriptCode(baseUrl: string, body: ChatRequestBody): string {
  return [
    `import OpenAI from "openai";`,
    ``,
    `const client = new OpenAI({ baseURL: ${JSON.stringify(baseUrl)}, apiKey: process.env.${KEY_VARIABLE} });`,
    ``,
    `const stream = await client.chat.completions.create(${JSON.stringify(body, null, 2)});`,
    `for await (const chunk of stream) {`,
    `  process.stdout.write(chunk.choices[0]?.delta?.content ?? "");`,
    `}`,
  ].join("\n");
}

/** Python's literal for a JSON value (JSON's string escapes are valid in Python strings). */
export function pythonLiteral(v: unknown, depth = 0): string {
  const pad = "    ".repeat(depth + 1);
  const end = "    ".repeat(depth);
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "None";
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return v.length === 0 ? "[]" : `[\n${v.map((x) => `${pad}${pythonLiteral(x, depth + 1)}`).join(",\n")},\n${end}]`;
  const entries = Object.entries(v as Record<string, unknown>);
  return entries.length === 0 ? "{}" : `{\n${entries.map(([k, x]) => `${pad}${JSON.stringify(k)}: ${pythonLiteral(x, depth + 1)}`).join(",\n")},\n${end}}`;
}

/** OpenAI's Python client takes llama-server's own fields (grammar) through `extra_body`. */
export function pythonCode(baseUrl: string, body: ChatRequestBody): string {
  const { grammar, ...known } = body;
  const args = Object.entries(known).map(([k, v]) => `    ${k}=${pythonLiteral(v, 1)},`);
  if (grammar !== undefined) args.push(`    extra_body=${pythonLiteral({ grammar }, 1)},`);
  return [
    `import os`,
    `from openai import OpenAI`,
    ``,
    `client = OpenAI(base_url=${JSON.stringify(baseUrl)}, api_key=os.environ[${JSON.stringify(KEY_VARIABLE)}])`,
    ``,
    `stream = client.chat.completions.create(`,
    ...args,
    `)`,
    `for chunk in stream:`,
    `    if chunk.choices:`,
    `        print(chunk.choices[0].delta.content or "", end="", flush=True)`,
  ].join("\n");
}
