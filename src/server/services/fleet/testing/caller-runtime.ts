/**
 * For router-level integration tests: the app's real runtime (a real SQLite
 * file, the local link's agent with the real llama-server, the tiny test
 * settings) in fresh test folders, and a tRPC caller on it.
 */
import path from "node:path";
import { testDirs, type TestDirs } from "../../../../../host-agent/test/harness/fixtures";
import { llamaServerBin } from "../../../../../host-agent/test/harness/llama-server";
import { createCaller } from "../../../api/root";
import { createContextInner } from "../../../api/trpc";
import { parseEnv } from "../../../env";
import { createRuntime, type AppRuntime } from "../../../runtime";
import { testLogger } from "./db";
import { TEST_SETTINGS, testAgentOverrides } from "./fixture";

export interface CallerRuntime {
  dirs: TestDirs;
  runtime: AppRuntime;
  caller: ReturnType<typeof createCaller>;
  /** Closes the runtime (stopping its servers) and removes the folders. */
  dispose(): Promise<void>;
}

/** `prefix` names the temp folder, `name` the logger; `port` is the env's PORT (the app does not listen on it). */
export async function callerRuntime(prefix: string, name: string, port = 3999): Promise<CallerRuntime> {
  const dirs = await testDirs(prefix);
  const bin = llamaServerBin();
  const env = parseEnv({
    DATABASE_URL: `file:${path.join(dirs.root, "data", "synapse.db")}`,
    SYNAPSE_STATE_DIR: dirs.stateDir,
    SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
    LLAMA_SERVER_BIN: bin,
    PORT: String(port),
    LOG_LEVEL: "error",
  });
  const runtime = await createRuntime({ env, log: testLogger(name), links: { localAgent: testAgentOverrides(dirs, bin) } });
  await runtime.db.runtimeSettings.upsert({ where: { id: 1 }, create: TEST_SETTINGS, update: TEST_SETTINGS });
  const caller = createCaller(createContextInner({ runtime }));
  return {
    dirs,
    runtime,
    caller,
    async dispose() {
      await runtime.close({ stopServers: true });
      await dirs.cleanup();
    },
  };
}
