/**
 * `renameLogs` through the agent, with the real llama-server and a tiny
 * model: a stopped server's log (the agent's header and what llama-server
 * wrote) moves to the new id, which `logs` then reads and a later start under
 * the new id appends to. Refused, changing no file, while the server runs,
 * when the new id has a log, and for ids that are not server ids (a path).
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentOptions, AgentPool, specFor, testDirs, untilListening, type TestDirs } from "../../test/harness/fixtures.ts";
import { llamaServerBin } from "../../test/harness/llama-server.ts";
import { freePort } from "../../test/harness/ports.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import type { HostAgent } from "../agent.ts";
import { AgentError } from "../protocol.ts";

let dirs: TestDirs;
let agent: HostAgent;
let model: string;
const pool = new AgentPool();
beforeAll(async () => {
  dirs = await testDirs("synapse-rename-logs-");
  model = await tinyModel(dirs.modelRoot);
  agent = pool.make(agentOptions(dirs, llamaServerBin()));
});
afterAll(async () => {
  await pool.stopEverything();
  await dirs.cleanup();
});

async function rejectionOf(p: Promise<unknown>): Promise<AgentError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof AgentError)) throw new Error(`expected an AgentError, got ${String(err)}`);
  return err;
}
const logsDir = () => path.join(dirs.stateDir, "logs");
const logFiles = async () => (await readdir(logsDir())).sort();

describe("renameLogs", () => {
  it("moves a stopped server's log to the new id: logs reads the old run there, and a start there appends to it", async () => {
    const started = await agent.call("start", { spec: specFor("before", model, await freePort()) });
    expect(started.state).toBe("ready");
    // This test is about the log's move: the stop waits for llama-server's 'listening on' (untilListening says why).
    await untilListening(agent, "before");

    const running = await rejectionOf(agent.call("renameLogs", { from: "before", to: "after" }));
    expect(running.code).toBe("CONFLICT");
    expect(running.message).toMatch(/^server before is running \(pid \d+\); stop it before moving its log$/);
    expect(await logFiles()).toEqual(["before.log"]);

    expect((await agent.call("stop", { id: "before" })).state).toBe("stopped");
    const oldText = await readFile(path.join(logsDir(), "before.log"), "utf8");
    expect(await agent.call("renameLogs", { from: "before", to: "after" })).toEqual({ from: "before", to: "after", moved: [path.join(logsDir(), "after.log")] });
    expect(await logFiles()).toEqual(["after.log"]);

    const moved = await agent.call("logs", { id: "after", lines: 5000 });
    expect(moved.logPath).toBe(path.join(logsDir(), "after.log"));
    expect(moved.lines.some((l) => l.startsWith("=== synapse host-agent: starting before at "))).toBe(true);
    expect(moved.lines.some((l) => /listening on http:\/\/127\.0\.0\.1:\d+/.test(l))).toBe(true);
    expect((await rejectionOf(agent.call("logs", { id: "before" }))).code).toBe("NOT_FOUND");

    // The next run under the new id follows the old one in the same file.
    expect((await agent.call("start", { spec: specFor("after", model, await freePort()) })).state).toBe("ready");
    expect((await agent.call("stop", { id: "after" })).state).toBe("stopped");
    const text = await readFile(path.join(logsDir(), "after.log"), "utf8");
    expect(text.startsWith(oldText)).toBe(true);
    expect(text.slice(oldText.length)).toMatch(/^=== synapse host-agent: starting after at /);
  });

  it("refuses when the new id already has a log, changing neither file", async () => {
    expect((await agent.call("start", { spec: specFor("other", model, await freePort()) })).state).toBe("ready");
    expect((await agent.call("stop", { id: "other" })).state).toBe("stopped");
    const before = { after: await readFile(path.join(logsDir(), "after.log"), "utf8"), other: await readFile(path.join(logsDir(), "other.log"), "utf8") };
    const err = await rejectionOf(agent.call("renameLogs", { from: "after", to: "other" }));
    expect(err.code).toBe("CONFLICT");
    expect(err.message).toBe(`server other already has a log (${path.join(logsDir(), "other.log")}); the log of after stays at ${path.join(logsDir(), "after.log")}`);
    expect({ after: await readFile(path.join(logsDir(), "after.log"), "utf8"), other: await readFile(path.join(logsDir(), "other.log"), "utf8") }).toEqual(before);
  });

  it.each([
    ["a path up and out", { from: "after", to: "../escaped" }, "to"],
    ["a path into a folder", { from: "a/b", to: "moved" }, "from"],
    ["a hidden name", { from: "after", to: ".hidden" }, "to"],
    ["an empty id", { from: "", to: "moved" }, "from"],
  ])("refuses %s as a bad request naming the field, touching no file", async (_what, params, field) => {
    const files = await logFiles();
    const err = await rejectionOf(agent.call("renameLogs", params));
    expect(err.code).toBe("BAD_REQUEST");
    expect([...new Set(err.issues?.map((i) => i.path))]).toEqual([field]);
    expect(await logFiles()).toEqual(files);
    expect(existsSync(path.join(dirs.stateDir, "escaped.log"))).toBe(false);
  });

  it("refuses the same id for both", async () => {
    const err = await rejectionOf(agent.call("renameLogs", { from: "after", to: "after" }));
    expect(err.code).toBe("BAD_REQUEST");
    expect(err.message).toBe("from and to are both after");
  });

  it("names the feature in hello", async () => {
    const hello = await agent.call("hello", { protocolVersion: 1 });
    expect(hello.features).toContain("rename-logs");
  });
});
