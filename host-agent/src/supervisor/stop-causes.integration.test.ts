/**
 * Every stopped, exited or failed status says why (its `cause`), with the
 * scripted stand-ins: a stop asked for, a crash of a ready server, an exit
 * while loading, a readiness deadline, a stop made on the host.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentError } from "../protocol.ts";
import { agentOptions, AgentPool, eventRecorder, specFor, stateOf, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { freePort } from "../../test/harness/ports.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";

let dirs: TestDirs;
let model: string;
const pool = new AgentPool();
beforeAll(async () => {
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
});
afterEach(() => pool.stopEverything());
afterAll(() => dirs.cleanup());

describe("stop causes", () => {
  it("requested, crash and host-stop on a ready server; no cause while it lives", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.forksChild));
    const rec = eventRecorder(agent);
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    const [a, b] = await Promise.all([
      agent.call("start", { spec: specFor("asked", model, p1, { stopGraceMs: 300 }) }),
      agent.call("start", { spec: specFor("crashes", model, p2, { stopGraceMs: 300 }) }),
      agent.call("start", { spec: specFor("onhost", model, p3, { stopGraceMs: 300 }) }),
    ]);
    expect(a.cause ?? null).toBeNull();
    expect(await agent.call("stop", { id: "asked" })).toMatchObject({ state: "stopped", cause: "requested" });
    process.kill(b.pid!, "SIGKILL");
    const exited = stateOf(await rec.waitFor((e) => stateOf(e)?.id === "crashes" && stateOf(e)?.state === "exited", 5000))!;
    expect(exited.cause).toBe("crash");
    const onHost = await agent.supervisor.stopAllOnHost("stop-metal-servers", 300);
    expect(onHost.find((s) => s.id === "onhost")).toMatchObject({ state: "stopped", cause: "host-stop" });
    // A crashed server that is then stopped: stopped, with the cause of that stop (the last command wins).
    expect(onHost.find((s) => s.id === "crashes")).toMatchObject({ state: "stopped", cause: "host-stop" });
  });

  it("an exit while loading is a crash; a readiness deadline is a deadline", async () => {
    const doomed = pool.make(agentOptions(dirs, standIns.exitsWhileLoading));
    const e1 = (await doomed.call("start", { spec: specFor("doomed", model, await freePort()) }).catch((e: AgentError) => e)) as AgentError;
    expect(e1.data).toMatchObject({ state: "failed", cause: "crash" });
    const slow = pool.make(agentOptions(dirs, standIns.hangsLoading));
    const e2 = (await slow.call("start", { spec: specFor("slow", model, await freePort(), { readinessDeadlineMs: 500, stopGraceMs: 300 }) }).catch((e: AgentError) => e)) as AgentError;
    expect(e2.data).toMatchObject({ state: "failed", cause: "deadline" });
  });
});
