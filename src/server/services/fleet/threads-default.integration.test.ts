/**
 * The thread count a server runs with follows its host, for real: a fresh registry's global default is
 * "auto" (null), so the agent leaves --threads off and the real llama-server counts the host's cores
 * itself (llama.cpp's cpu_get_num_math); a model's own count and a global one are passed as given.
 * What the process got is read from the process table and llama-server's own log line.
 */
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { TINY_SERVER_SETTINGS } from "../../../../host-agent/test/harness/fixtures";
import { commandPreview } from "~/server/services/preview";
import { getSettings, updateSettings } from "~/server/services/registry/settings";
import { fleetFixture, type FleetFixture } from "./testing/fixture";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

/** The running process's argv (/proc/<pid>/cmdline). */
async function argvOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").filter((a) => a !== "");
}

/** The thread count llama-server says it runs with ("llama threadpool init, n_threads = 2"), from this run's log. */
async function loggedThreads(f: FleetFixture, modelId: string): Promise<number> {
  const { lines } = await f.fleet.logs(modelId, 2000);
  const said = lines.map((l) => /threadpool init, n_threads = (\d+)/.exec(l)).filter((m) => m !== null);
  if (said.length === 0) throw new Error(`no n_threads line in the log:\n${lines.join("\n")}`);
  return Number(said[said.length - 1]![1]);
}

describe("the default thread count follows the host", () => {
  it("a fresh default is auto: no --threads, llama-server's own count of the host's cores (never more than the CPUs the agent reports); a model's or a global count runs as given", async () => {
    const f = (fx = await fleetFixture());
    // The settings row as a fresh registry makes it (the fixture's has the tiny test values).
    await f.t.db.runtimeSettings.delete({ where: { id: 1 } });
    expect((await getSettings(f.t.db)).threads).toBeNull();
    const { threads: _fixed, ...tiny } = TINY_SERVER_SETTINGS;
    await updateSettings(f.t.db, tiny);

    const link = await f.links.get(f.host);
    const cpus = (await link.call("hostMemory", {})).load?.cpus;
    expect(cpus).toBeGreaterThan(0);

    const m = await f.addModel("auto-threads");
    expect((await commandPreview({ db: f.t.db, links: f.links }, m.id)).args).not.toContain("--threads");
    const started = await f.fleet.start(m.id);
    expect(started.state).toBe("ready");
    expect(await argvOf(started.pid!)).not.toContain("--threads");
    const auto = await loggedThreads(f, m.id);
    expect(auto).toBeGreaterThan(0);
    expect(auto).toBeLessThanOrEqual(cpus!);
    await f.fleet.stop(m.id);

    // A model's own count: passed as given.
    await f.t.db.model.update({ where: { id: m.id }, data: { threads: 1 } });
    const own = await f.fleet.start(m.id);
    const argv = await argvOf(own.pid!);
    expect(argv[argv.indexOf("--threads") + 1]).toBe("1");
    expect(await loggedThreads(f, m.id)).toBe(1);
    await f.fleet.stop(m.id);

    // A global count set by the user: for a model without its own.
    await f.t.db.model.update({ where: { id: m.id }, data: { threads: null } });
    await updateSettings(f.t.db, { threads: 1 });
    const global = await f.fleet.start(m.id);
    const argv2 = await argvOf(global.pid!);
    expect(argv2[argv2.indexOf("--threads") + 1]).toBe("1");
    await f.fleet.stop(m.id);
  });
});
