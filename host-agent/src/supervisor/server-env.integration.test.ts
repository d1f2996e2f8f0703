/**
 * Issue 14 item 6: a server inherits only a minimal environment, not the
 * agent's (or the app's) secrets or LLAMA_ARG_* flags. Read from the
 * running server's /proc/PID/environ, spawned directly and through the
 * spawn helper.
 */
import { readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, specFor, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { freePort } from "../../test/harness/ports.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";

let dirs: TestDirs;
let model: string;
const pool = new AgentPool();
const planted = { SYNAPSE_API_TOKEN: "app-token-must-not-leak", LLAMA_ARG_CTX_SIZE: "99999", DATABASE_URL: "file:/tmp/x.db" };
beforeAll(async () => {
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
  Object.assign(process.env, planted);
});
afterEach(() => pool.stopEverything());
afterAll(async () => {
  for (const k of Object.keys(planted)) delete process.env[k];
  await dirs.cleanup();
});

function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

describe.runIf(process.platform === "linux")("a server's environment", () => {
  it.each([false, true])("holds PATH, HOME and its API key, not the app's token or LLAMA_ARG_* (spawn helper: %s)", async (spawnHelper) => {
    const agent = pool.make(agentOptions(dirs, standIns.forksChild, { spawnHelper }));
    const s = await agent.call("start", { spec: specFor("env", model, await freePort(), { apiKey: "server-key-1", stopGraceMs: 300 }) });
    const env = environOf(s.pid!);
    expect(env.PATH).toBe(process.env.PATH);
    expect(env.HOME).toBe(process.env.HOME);
    expect(env.LLAMA_API_KEY).toBe("server-key-1");
    expect(env).not.toHaveProperty("SYNAPSE_API_TOKEN");
    expect(env).not.toHaveProperty("LLAMA_ARG_CTX_SIZE");
    expect(env).not.toHaveProperty("DATABASE_URL");
    expect(Object.keys(env).filter((k) => !/^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|TZ|TMPDIR|TMP|TEMP|LC_\w+|LLAMA_API_KEY|SYNAPSE_SERVER_RUN)$/.test(k))).toEqual([]);
  });
});
