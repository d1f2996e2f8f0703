/**
 * Fault 5 (issue 13): "ready" must mean our server answered. A foreign
 * process (stand-in-foreign-listener) takes the port after the agent's
 * pre-spawn check, while the server (stand-in-binds-late) still loads
 * without listening, and answers /health 200.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { AgentError } from "../protocol.ts";
import { agentOptions, AgentPool, eventRecorder, specFor, stateOf, testDirs, type TestDirs } from "../../test/harness/fixtures.ts";
import { freePort } from "../../test/harness/ports.ts";
import { standIns } from "../../test/harness/stand-ins/index.ts";
import { tinyModel } from "../../test/harness/tiny-model.ts";
import http from "node:http";
import { listenerOwnership, type OwnershipSeen } from "./listener-owner.ts";
import { ReadinessWait } from "./readiness.ts";

let dirs: TestDirs;
let model: string;
const pool = new AgentPool();
const foreign: ChildProcess[] = [];
beforeAll(async () => {
  dirs = await testDirs();
  model = await tinyModel(dirs.modelRoot);
});
afterEach(async () => {
  for (const f of foreign.splice(0)) f.kill("SIGKILL");
  await pool.stopEverything();
});
afterAll(() => dirs.cleanup());

/** Starts the foreign listener on `port` and resolves once it listens. */
async function foreignListener(port: number): Promise<ChildProcess> {
  const p = spawn(process.execPath, [standIns.foreignListener, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  foreign.push(p);
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("the foreign listener did not start within 10 s")), 10_000);
    p.stdout!.once("data", () => (clearTimeout(t), resolve()));
  });
  return p;
}

describe("readiness is tied to our server", () => {
  it("a foreign process that answers /health 200 on the port does not make the model ready", async () => {
    const agent = pool.make(agentOptions(dirs, standIns.bindsLate));
    const rec = eventRecorder(agent);
    const port = await freePort();
    const starting = agent.call("start", { spec: specFor("late", model, port, { readinessDeadlineMs: 20_000 }) }).catch((e: AgentError) => e);
    await rec.waitFor((e) => stateOf(e)?.id === "late" && stateOf(e)?.state === "starting", 10_000);
    const intruder = await foreignListener(port);
    const result = await starting;
    const states = rec.events.flatMap((e) => (e.kind === "state" && e.status.id === "late" ? [e.status.state] : []));
    expect(states).not.toContain("ready");
    expect(result).toBeInstanceOf(AgentError);
    const err = result as AgentError;
    expect(err.message).toMatch(/exited with code 1 while loading/);
    expect(err.message).toMatch(new RegExp(`port ${port} is answered by pid ${intruder.pid} \\(node\\), not by this server`));
    expect(err.data).toMatchObject({ state: "failed", cause: "crash" });
  });

  it("the ownership check: our listener is ours, a foreign one is named (Linux rules, and the /props rule used elsewhere)", async () => {
    const port = await freePort();
    const intruder = await foreignListener(port);
    const linux = await listenerOwnership({ port, host: "127.0.0.1", pid: process.pid, descendants: async () => [], modelPath: "/models/a.gguf" }, "linux");
    expect(linux).toEqual({ ours: false, holder: { port, pid: intruder.pid, command: "node" } });
    const linuxOurs = await listenerOwnership({ port, host: "127.0.0.1", pid: process.pid, descendants: async () => [intruder.pid!], modelPath: "/models/a.gguf" }, "linux");
    expect(linuxOurs).toEqual({ ours: true });
    // macOS rules: /props names the model the listener loaded; the path the agent passed makes it ours without lsof.
    const props = await listenerOwnership({ port, host: "127.0.0.1", pid: process.pid, descendants: async () => [], modelPath: "/somewhere/else.gguf" }, "darwin");
    expect(props).toEqual({ ours: true });
  });

  it("the listener is looked at while the server answers 503 (loading); seen to be the server's then, the 200 needs no second look; anything less is looked at again after the 200", async () => {
    // stand-in-loading-server: answers /health 503 until `ready`, then 200 (as llama-server while it loads, then ready).
    let ready = false;
    const server = http.createServer((_req, res) => {
      res.statusCode = ready ? 200 : 503;
      res.end();
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    try {
      const holder = { port, pid: 1, command: "other" };
      const cases: [string, OwnershipSeen, number[]][] = [
        ["seen to be ours", { ours: true, seen: true }, [503]],
        ["no listener seen (counts as ours, unconfirmed)", { ours: true, seen: false }, [503, 200]],
        ["a foreign listener", { ours: false, holder }, [503, 200]],
      ];
      for (const [what, whileLoading, expectedLooks] of cases) {
        ready = false;
        const looks: number[] = [];
        const wait = new ReadinessWait();
        const run = wait.run(
          {
            host: "127.0.0.1", port, deadlineMs: 10_000, exited: new Promise(() => {}), stopRequested: () => false,
            owned: async () => {
              looks.push(ready ? 200 : 503);
              return ready ? { ours: true, seen: true } : whileLoading;
            },
          },
          true,
        );
        const deadline = Date.now() + 5_000;
        while (looks.length === 0) {
          if (Date.now() > deadline) throw new Error(`${what}: no look while loading`);
          await new Promise((r) => setTimeout(r, 5));
        }
        ready = true;
        wait.hint();
        expect(await run, what).toEqual({ kind: "ready" });
        expect(looks, what).toEqual(expectedLooks);
      }
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
