import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { ChatRequestBody } from "./chat-request";
import { curlCommand, javascriptCode, pythonCode, pythonLiteral, shellQuote } from "./request-snippets";

const body: ChatRequestBody = {
  model: "tiny",
  messages: [{ role: "user", content: "it's a \"test\" with $HOME and `cmd`\nline two" }],
  stream: true,
  stream_options: { include_usage: true },
  temperature: 0.5,
  grammar: 'root ::= "it\'s"',
};
const BASE = "http://127.0.0.1:3000/v1";

describe("request snippets", () => {
  it("curl: the shell gives the body back byte for byte (nothing expanded), the key is a variable", () => {
    const cmd = curlCommand(BASE, body);
    expect(cmd).toContain('-H "Authorization: Bearer $SYNAPSE_API_KEY"');
    // Run the -d word through a real shell: printf prints exactly what curl would send.
    const word = cmd.slice(cmd.indexOf("-d ") + 3);
    const out = execFileSync("/bin/sh", ["-c", `printf %s ${word}`], { env: { HOME: "/should-not-appear" } as unknown as NodeJS.ProcessEnv }).toString();
    expect(JSON.parse(out)).toEqual(body);
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });

  it("JavaScript: the body as sent, the key from the environment", () => {
    const js = javascriptCode(BASE, body);
    expect(js).toContain(`baseURL: "${BASE}"`);
    expect(js).toContain("apiKey: process.env.SYNAPSE_API_KEY");
    const literal = js.slice(js.indexOf("create(") + 7, js.indexOf(");\nfor await"));
    expect(JSON.parse(literal)).toEqual(body);
  });

  it("Python: keyword arguments, grammar through extra_body, Python literals", () => {
    const py = pythonCode(BASE, body);
    expect(py).toContain('api_key=os.environ["SYNAPSE_API_KEY"]');
    expect(py).toContain("    stream=True,");
    expect(py).toContain("    temperature=0.5,");
    expect(py).toMatch(/extra_body=\{\n\s+"grammar": "root ::= \\"it's\\"",\n\s+\}/);
    expect(pythonLiteral({ a: [true, false, null, 1.5, "x"] })).toBe('{\n    "a": [\n        True,\n        False,\n        None,\n        1.5,\n        "x",\n    ],\n}');
  });
});
