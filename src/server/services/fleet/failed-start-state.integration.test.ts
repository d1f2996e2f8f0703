/**
 * A start refused because the model's port is held, after the model had run and stopped: the model is
 * `failed` (no cause, no restart planned) and stays so, with no further event, until the user starts it
 * again; freeing the port does not start it by itself. The same rule whether the agent still remembers
 * the earlier process (stopped by the user: its `status` keeps reporting that stopped process) or not
 * (stopped at app shutdown, the app and its local agent started again).
 *
 * What a user sees, through the app's real runtime and tRPC caller: servers.status polled, servers.history,
 * the app's log. Real SQLite file, the local link's real agent, the real llama-server, a real listener in
 * this process holding the port.
 */
import net from "node:net";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { testDirs, type TestDirs } from "../../../../host-agent/test/harness/fixtures";
import { llamaServerBin } from "../../../../host-agent/test/harness/llama-server";
import { freePort } from "../../../../host-agent/test/harness/ports";
import { tinyModel } from "../../../../host-agent/test/harness/tiny-model";
import { createCaller } from "../../api/root";
import { createContextInner } from "../../api/trpc";
import { parseEnv } from "../../env";
import { createLogger } from "../../log/logger";
import { createRuntime, type AppRuntime } from "../../runtime";
import { pidsRunning, TEST_SETTINGS, testAgentOverrides } from "./testing/fixture";

/** The reconcile tick: short, so a few seconds of polling span many ticks. */
const RECONCILE_MS = 300;
const POLL_MS = 150;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface App {
  runtime: AppRuntime;
  caller: ReturnType<typeof createCaller>;
  /** The app log's warn and error lines (JSON objects). */
  warnings: { level: string; msg: string }[];
}

interface Setup {
  dirs: TestDirs;
  /** Starts the app (a new runtime on the same database file and state folder). */
  open(): Promise<App>;
  addModel(app: App, name: string): Promise<{ id: string; port: number; filePath: string }>;
  /** Holds `port` on 127.0.0.1 with a listener of this process until `release()` or the test's end. */
  hold(port: number): Promise<{ release(): Promise<void> }>;
}

async function setup(): Promise<Setup> {
  const dirs = await testDirs("synapse-failed-start-");
  const bin = llamaServerBin();
  const models: string[] = [];
  const opened: AppRuntime[] = [];
  const holders = new Set<net.Server>();
  cleanups.push(async () => {
    for (const h of holders) await new Promise<void>((resolve) => h.close(() => resolve()));
    for (const r of opened) await r.close({ stopServers: true });
    const left = (await Promise.all(models.map((m) => pidsRunning(m)))).flat();
    for (const pid of left) process.kill(pid, "SIGKILL");
    await dirs.cleanup();
    if (left.length) throw new Error(`processes left running: ${left.join(", ")}`);
  });
  const env = parseEnv({
    DATABASE_URL: `file:${path.join(dirs.root, "data", "synapse.db")}`,
    SYNAPSE_STATE_DIR: dirs.stateDir,
    SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
    LLAMA_SERVER_BIN: bin,
    PORT: "3999",
    SYNAPSE_RECONCILE_INTERVAL_MS: String(RECONCILE_MS),
    LOG_LEVEL: "error",
  });
  return {
    dirs,
    async open() {
      const warnings: App["warnings"] = [];
      const log = createLogger("app", "warn", (line) => warnings.push(JSON.parse(line) as App["warnings"][number]));
      const runtime = await createRuntime({ env, log, links: { localAgent: testAgentOverrides(dirs, bin) } });
      opened.push(runtime);
      await runtime.db.runtimeSettings.upsert({ where: { id: 1 }, create: TEST_SETTINGS, update: TEST_SETTINGS });
      return { runtime, caller: createCaller(createContextInner({ runtime })), warnings };
    },
    async addModel(app, name) {
      const host = await app.runtime.db.host.findUniqueOrThrow({ where: { name: "local" } });
      const file = await tinyModel(dirs.modelRoot, `${name}.gguf`);
      models.push(file);
      return app.runtime.db.model.create({ data: { name, hostId: host.id, filePath: file, port: await freePort(), enabled: true } });
    },
    async hold(port) {
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", resolve);
      });
      holders.add(server);
      return {
        release: () =>
          new Promise<void>((resolve) => {
            holders.delete(server);
            server.close(() => resolve());
          }),
      };
    },
  };
}

/** What a user reads of one model in servers.status. */
type View = { state: string; cause: string | null; desired: string; nextRestartAt: string | null; lastError: string | null };

/** servers.status polled every POLL_MS for `ms`: the views seen, each change once (consecutive repeats dropped). */
async function pollStatus(app: App, modelId: string, ms: number): Promise<View[]> {
  const seen: View[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = (await app.caller.servers.status()).find((s) => s.modelId === modelId);
    if (!v) throw new Error(`model ${modelId} is not in servers.status`);
    const view: View = { state: v.state, cause: v.cause, desired: v.desired, nextRestartAt: v.nextRestartAt, lastError: v.lastError };
    if (JSON.stringify(view) !== JSON.stringify(seen.at(-1))) seen.push(view);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return seen;
}

/** The model's events in servers.history, oldest first, as [kind, state, message, data.pid]. */
async function history(app: App, modelId: string) {
  const page = await app.caller.servers.history({ modelId, limit: 500 });
  return page.events
    .slice()
    .reverse()
    .map((e) => ({ id: e.id, kind: e.kind, state: e.state, message: e.message, pid: ((e.data ?? {}) as { pid?: unknown }).pid ?? null }));
}

/** The model's recorded stops, as [message, pid]: a stop of an old process replayed would show up again here. */
async function stopsRecorded(app: App, modelId: string): Promise<[string, unknown][]> {
  return (await history(app, modelId)).filter((e) => e.kind === "state" && e.state === "stopped").map((e) => [e.message, e.pid]);
}

const heldText = (name: string, port: number) =>
  `cannot start ${name}: port ${port} is held by pid ${process.pid} (node); stop that process, or give this model a free port (its Edit form, or models.update with port), then start it again`;

/**
 * After a start refused because the port is held: it stays `failed` (no cause, still wanted, no restart
 * planned) over many reconcile ticks, with no event after the refusal and one warning in the app's log;
 * once the port is free it is still not started by itself; the user's start then starts it.
 */
async function expectFailedUntilStarted(app: App, m: { id: string; port: number; filePath: string }, holder: { release(): Promise<void> }, refusedError: string) {
  const failedView: View = { state: "failed", cause: null, desired: "running", nextRestartAt: null, lastError: refusedError };
  const [refusal] = (await history(app, m.id)).filter((e) => e.kind === "error").slice(-1);
  expect(refusal?.message).toBe(refusedError);

  expect(await pollStatus(app, m.id, 3000)).toEqual([failedView]);
  expect((await history(app, m.id)).filter((e) => e.id > refusal!.id)).toEqual([]);
  expect(app.warnings.filter((w) => w.msg.startsWith("cannot start")).map((w) => w.msg)).toEqual([refusedError]);

  await holder.release();
  expect(await pollStatus(app, m.id, 2000)).toEqual([failedView]);
  expect(await pidsRunning(m.filePath)).toEqual([]);
  expect((await history(app, m.id)).filter((e) => e.id > refusal!.id)).toEqual([]);

  const started = await app.caller.servers.start({ id: m.id });
  expect([started.state, started.error]).toEqual(["ready", null]);
  expect(await pidsRunning(m.filePath)).toEqual([started.pid]);
  const after = (await app.caller.servers.status()).find((s) => s.modelId === m.id)!;
  expect([after.state, after.lastError, after.desired]).toEqual(["ready", null, "running"]);
}

describe("a start refused because the model's port is held", () => {
  /** alpha ran, the user stopped it, then its start was refused (its port held): the app, model, first run, holder and refusal. */
  async function refusedAfterStop() {
    const s = await setup();
    const app = await s.open();
    const m = await s.addModel(app, "alpha");
    const first = await app.caller.servers.start({ id: m.id });
    expect(first.state).toBe("ready");
    const stopped = await app.caller.servers.stop({ id: m.id });
    expect(stopped.state).toBe("stopped");
    const holder = await s.hold(m.port);
    const refused = await app.caller.servers.start({ id: m.id });
    expect([refused.state, refused.pid, refused.error]).toEqual(["failed", null, heldText("alpha", m.port)]);
    return { app, m, first, holder, refused };
  }

  it("after the user stopped it (the agent still reports that stopped process): failed until the user starts it; no stop of the old process is replayed", async () => {
    const { app, m, first, holder, refused } = await refusedAfterStop();

    await expectFailedUntilStarted(app, m, holder, refused.error!);
    // The first process's stop is recorded once, when it happened: never again with its pid.
    expect(await stopsRecorded(app, m.id)).toEqual([["alpha: stopped (stopped on request)", first.pid]]);
  });

  it("the user's stop of it then: stopped on request, no longer wanted, with no stop of the old process reported", async () => {
    const { app, m, first, refused } = await refusedAfterStop();

    const stopped = await app.caller.servers.stop({ id: m.id });
    expect(stopped).toMatchObject({ state: "stopped", notRunning: true, previousState: "failed" });
    // The user's stop is its cause; the refusal stays as its last error, history under a stop's cause.
    expect(await pollStatus(app, m.id, 1500)).toEqual([{ state: "stopped", cause: "requested", desired: "stopped", nextRestartAt: null, lastError: refused.error }]);
    // This stop recorded once, with no process (nothing ran); the first process's stop is not replayed with its pid.
    expect(await stopsRecorded(app, m.id)).toEqual([
      ["alpha: stopped (stopped on request)", first.pid],
      ["alpha: stopped (stopped on request; it had failed, nothing was running)", null],
    ]);
  });

  it("after the app stopped it at shutdown and started again: the same rule, failed until the user starts it", async () => {
    const s = await setup();
    const before = await s.open();
    const m = await s.addModel(before, "alpha");
    const first = await before.caller.servers.start({ id: m.id });
    expect(first.state).toBe("ready");
    await before.runtime.close({ stopServers: true });
    expect(await pidsRunning(m.filePath)).toEqual([]);

    const holder = await s.hold(m.port);
    const app = await s.open();
    const down = (await app.caller.servers.status()).find((v) => v.modelId === m.id)!;
    expect([down.state, down.cause, down.desired]).toEqual(["stopped", "shutdown", "stopped"]);
    const refused = await app.caller.servers.start({ id: m.id });
    expect([refused.state, refused.pid, refused.error]).toEqual(["failed", null, heldText("alpha", m.port)]);

    await expectFailedUntilStarted(app, m, holder, refused.error!);
    expect(await stopsRecorded(app, m.id)).toEqual([["alpha: stopped (stopped at app shutdown)", first.pid]]);
  });
});
