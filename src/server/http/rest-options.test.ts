/** readOptions: a REST mutation's options from its query string and/or JSON body, one schema, clear 400s. */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ServiceError } from "~/server/services/errors";
import { MAX_OPTIONS_BODY_BYTES, readOptions } from "./rest";

const flag = z.enum(["true", "false"], { error: "must be true or false" });
const schema = z
  .object({ wait: flag.default("true"), force: flag.default("false") })
  .strict()
  .transform((q) => ({ wait: q.wait === "true", force: q.force === "true" }));

function post(query: string, body?: string): Request {
  return new Request(`http://127.0.0.1:3000/api/models/servers/start-all${query}`, { method: "POST", headers: { "content-type": "application/json" }, ...(body !== undefined ? { body } : {}) });
}

async function refusal(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => null, (e: unknown) => e);
  if (err instanceof ServiceError) return `${err.code}: ${err.message}`;
  if (err instanceof z.ZodError) return `zod: ${err.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`;
  throw new Error(`expected a refusal, got ${String(err)}`);
}

describe("readOptions", () => {
  it("defaults with no query and no body; the query alone; a JSON body alone; both agreeing", async () => {
    expect(await readOptions(post(""), schema)).toEqual({ wait: true, force: false });
    expect(await readOptions(post("", ""), schema)).toEqual({ wait: true, force: false });
    expect(await readOptions(post("", "{}"), schema)).toEqual({ wait: true, force: false });
    expect(await readOptions(post("?force=true"), schema)).toEqual({ wait: true, force: true });
    expect(await readOptions(post("", '{"force": true, "wait": false}'), schema)).toEqual({ wait: false, force: true });
    expect(await readOptions(post("?force=true", '{"force": true}'), schema)).toEqual({ wait: true, force: true });
  });

  it("refuses with what to fix: not JSON, not an object, an unknown option, a conflict, a wrong type or value, too large", async () => {
    expect(await refusal(readOptions(post("", "force=true"), schema))).toMatch(/^BAD_REQUEST: the body is not JSON .*\{"force": true\}/);
    expect(await refusal(readOptions(post("", "[true]"), schema))).toMatch(/^BAD_REQUEST: the body must be a JSON object of options/);
    expect(await refusal(readOptions(post("", '{"forse": true}'), schema))).toBe('BAD_REQUEST: unknown option "forse"; it takes wait, force');
    expect(await refusal(readOptions(post("?forse=1&x=2", ""), schema))).toBe('BAD_REQUEST: unknown options "forse", "x"; it takes wait, force');
    expect(await refusal(readOptions(post("", '{"force": true}'), z.object({}).strict()))).toBe('BAD_REQUEST: unknown option "force"; it takes no options');
    expect(await refusal(readOptions(post("?force=false", '{"force": true}'), schema))).toBe('BAD_REQUEST: option "force" is false in the query and true in the body; give it once');
    expect(await refusal(readOptions(post("", '{"force": {"on": 1}}'), schema))).toBe('BAD_REQUEST: option "force" must be a boolean, number or string, not object');
    expect(await refusal(readOptions(post("", '{"wait": "soon"}'), schema))).toMatch(/^zod: wait must be true or false/);
    const big = JSON.stringify({ force: true, pad: "x".repeat(MAX_OPTIONS_BODY_BYTES) });
    expect(await refusal(readOptions(post("", big), schema))).toMatch(/^BAD_REQUEST: request body is larger than the limit of 65536 bytes/);
  });

  it("a body option named like an Object.prototype member is an unknown option, not a clash with the query", async () => {
    for (const key of ["constructor", "toString", "hasOwnProperty", "__proto__"]) {
      const message = await refusal(readOptions(post("", `{"${key}": true}`), schema));
      expect(message, key).not.toMatch(/in the query/);
      expect(message, key).toMatch(/^BAD_REQUEST: unknown option/);
      expect(message, key).toContain(key);
    }
  });
});
