/**
 * The set-up most of the agent's integration test files share, as vitest hooks in the calling file: before
 * its tests, fresh test folders (testDirs) and the tiny model in their model root; after each test, every
 * agent made with `pool` stopped and closed (nothing outlives a test); after all of them, the folders
 * removed. In its own file, not fixtures.ts: the benchmarks import fixtures.ts, and vitest's hooks only run
 * under vitest.
 */
import { afterAll, afterEach, beforeAll } from "vitest";
import { AgentPool, testDirs, type TestDirs } from "./fixtures.ts";
import { tinyModel } from "./tiny-model.ts";

export interface AgentTestBed {
  pool: AgentPool;
  /** The file's test folders (set before its first test; reading it earlier throws). */
  readonly dirs: TestDirs;
  /** The tiny model's path in `dirs.modelRoot` (set before the file's first test). */
  readonly model: string;
}

/** Registers the hooks; call it once at a test file's top level. */
export function agentTestBed(): AgentTestBed {
  const pool = new AgentPool();
  let made: { dirs: TestDirs; model: string } | null = null;
  beforeAll(async () => {
    const dirs = await testDirs();
    made = { dirs, model: await tinyModel(dirs.modelRoot) };
  });
  afterEach(() => pool.stopEverything());
  afterAll(() => made?.dirs.cleanup());
  const ready = () => {
    if (!made) throw new Error("agentTestBed: its folders are made in beforeAll; read them inside a test or hook");
    return made;
  };
  return {
    pool,
    get dirs() {
      return ready().dirs;
    },
    get model() {
      return ready().model;
    },
  };
}
