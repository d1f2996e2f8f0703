/**
 * A fleet over real processes for integration tests: a migrated SQLite file,
 * a "local" host whose agent runs in the test process with its own state
 * folder and model root, the real llama-server (LLAMA_SERVER_BIN from the
 * vitest global setup) and tiny models on free ports.
 *
 * `dispose()` stops every server through the agents, closes everything,
 * then checks the process table and SIGKILLs anything a test left behind
 * (and fails loudly about it), so no child outlives its test.
 */
import { chmod } from "node:fs/promises";
import path from "node:path";
import { agentOptions, pidsRunning, testDirs, TINY_SERVER_SETTINGS, type TestDirs } from "../../../../../host-agent/test/harness/fixtures";
import { llamaServerBin } from "../../../../../host-agent/test/harness/llama-server";
import { freePort } from "../../../../../host-agent/test/harness/ports";
import { tinyModel } from "../../../../../host-agent/test/harness/tiny-model";
import type { Host, Model } from "~/generated/prisma/client";
import type { Env } from "~/server/env";
import { createEventBus, type EventBus } from "../events";
import { createFleet, type Fleet, type FleetOptions } from "../fleet";
import { createLinkPool, type LinkPool, type LinkPoolOptions, type SshTuning } from "../links";
import type { Logger } from "~/server/log/logger";
import { testDb, testLogger, type TestDb } from "./db";

export const STAND_IN_CRASHES_WHEN_READY = path.join(import.meta.dirname, "stand-in-crashes-when-ready.mjs");

/** Small, fast runtime defaults for tiny models on a 2-core machine. */
export const TEST_SETTINGS = { id: 1, ...TINY_SERVER_SETTINGS } as const;

export interface FleetFixture {
  t: TestDb;
  dirs: TestDirs;
  bin: string;
  host: Host;
  links: LinkPool;
  events: EventBus;
  fleet: Fleet;
  linkEnv: LinkPoolOptions["env"];
  /** A tiny model file in the model root and a registry row for it on a free port. */
  addModel(name: string, extra?: Partial<Pick<Model, "enabled" | "hostId">>): Promise<Model>;
  /** Rebuilds links, events and fleet on the same database and state folder (an app restart); `whileDown` runs in between. */
  restart(options?: { stopServers?: boolean; whileDown?: () => Promise<void> }): Promise<void>;
  dispose(): Promise<void>;
}

export interface FleetFixtureOptions {
  fleet?: Partial<Pick<FleetOptions, "restartPolicy" | "reconcileIntervalMs" | "statusTimeoutMs">>;
  /** What the fleet sees of the pool (e.g. stand-in-older-agent.ts); closing still closes the real pool. */
  viewLinks?: (pool: LinkPool) => LinkPool;
  /** The app's logger, which the local agent logs through too (`fleet.agent.local`); default testLogger("fleet"). */
  log?: Logger;
  /** ssh links' settings (e.g. a long reconnect backoff); default the app's. */
  ssh?: SshTuning;
}

/**
 * Local agent settings for tests: quick health checks, quiet logs. The binary,
 * state folder and model roots come from the pool's env and each host row,
 * as in the app.
 */
export function testAgentOverrides(dirs: TestDirs, bin: string) {
  const { logMaxBytes, logLevel } = agentOptions(dirs, bin);
  return { logMaxBytes, logLevel, healthIntervalMs: 300, exitPollMs: 50 };
}

export async function fleetFixture(options: FleetFixtureOptions = {}): Promise<FleetFixture> {
  const t = testDb();
  const dirs = await testDirs("synapse-fleet-agent-");
  const bin = llamaServerBin();
  await chmod(STAND_IN_CRASHES_WHEN_READY, 0o755);
  await t.db.runtimeSettings.create({ data: TEST_SETTINGS });
  const host = await t.db.host.create({ data: { name: "local", linkKind: "local" } });
  const linkEnv: LinkPoolOptions["env"] = {
    SYNAPSE_MODEL_ROOTS: dirs.modelRoot,
    SYNAPSE_STATE_DIR: dirs.stateDir,
    LLAMA_SERVER_BIN: bin,
    SYNAPSE_SSH_DIR: path.join(dirs.root, "ssh"),
    SYNAPSE_SSH_HOST_ALIAS: "mac-host",
  } satisfies Pick<Env, keyof LinkPoolOptions["env"]>;
  const log = options.log ?? testLogger("fleet");

  const build = async () => {
    const links = createLinkPool({ env: linkEnv, log, localAgent: testAgentOverrides(dirs, bin), ...(options.ssh ? { ssh: options.ssh } : {}) });
    const events = await createEventBus({ db: t.db, log });
    const fleet = createFleet({ db: t.db, links: options.viewLinks ? options.viewLinks(links) : links, events, log, appPort: 3000, reconcileIntervalMs: 0, ...options.fleet });
    return { links, events, fleet };
  };
  let parts = await build();
  const modelPaths: string[] = [];

  const closeParts = async (stopServers: boolean) => {
    await parts.fleet.shutdown({ stopServers, deadlineMs: 20_000 });
    await parts.fleet.close();
    await parts.links.close();
    await parts.events.close();
  };

  const fixture: FleetFixture = {
    t,
    dirs,
    bin,
    host,
    linkEnv,
    get links() {
      return parts.links;
    },
    get events() {
      return parts.events;
    },
    get fleet() {
      return parts.fleet;
    },
    async addModel(name, extra = {}) {
      const file = await tinyModel(dirs.modelRoot, `${name}.gguf`);
      modelPaths.push(file);
      return t.db.model.create({ data: { name, hostId: extra.hostId ?? host.id, filePath: file, port: await freePort(), enabled: extra.enabled ?? true } });
    },
    async restart(opts = {}) {
      await closeParts(opts.stopServers ?? false);
      await opts.whileDown?.();
      parts = await build();
    },
    async dispose() {
      try {
        await closeParts(true);
      } finally {
        const left = (await Promise.all(modelPaths.map((p) => pidsRunning(p)))).flat();
        for (const pid of left) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // gone meanwhile
          }
        }
        await t.cleanup();
        await dirs.cleanup();
        if (left.length > 0) throw new Error(`processes left running after the test (killed now): ${left.join(", ")}`);
      }
    },
  };
  return fixture;
}

export { pidsRunning };

/** Polls `fn` until it returns a truthy value, or throws after the deadline with the last value. */
export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 15_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const v = await fn();
    if (v) return v;
    last = v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** True when nothing listens on the port (a connect is refused). */
export async function portFree(port: number): Promise<boolean> {
  const net = await import("node:net");
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", () => resolve(true));
  });
}

/** The fleet's status row of the model named `name`; throws when there is none. */
export async function statusOf(f: FleetFixture, name: string) {
  const s = (await f.fleet.status()).find((v) => v.name === name);
  if (!s) throw new Error(`no status for ${name}`);
  return s;
}
