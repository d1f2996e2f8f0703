/**
 * The fleet's log search (Fleet.logs with `search`, behind servers.logs, the model page's search box and
 * `synapse logs --grep`) over the local link's real agent and llama-server: the agent searches the whole log
 * (log-search); an agent older than that feature (stand-in-older-agent: its `logs` refuses `grep`) is asked
 * for its last 5000 lines, which the app searches, and the answer says so and what to update.
 */
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { fleetFixture, type FleetFixture } from "./testing/fixture";
import { standInOlderAgents } from "./testing/stand-in-older-agent";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

describe("log search through the fleet", () => {
  it.each([
    ["an agent with log-search: the whole log", false],
    ["an older agent: its last 5000 lines, with a note naming the host to update", true],
  ])("%s", async (_, older) => {
    const f = (fx = await fleetFixture(older ? { viewLinks: standInOlderAgents } : {}));
    const m = await f.addModel("alpha");
    for (let run = 0; run < 2; run++) {
      expect((await f.fleet.start(m.id, { wait: true })).state).toBe("ready");
      await f.fleet.stop(m.id);
    }
    const tail = await f.fleet.logs(m.id, 5000);
    expect(tail.search).toBeUndefined();
    const file = (await readFile(tail.logPath!, "utf8")).split("\n").filter((l) => l !== "");
    const headers = file.filter((l) => l.startsWith("=== synapse host-agent: starting alpha at "));
    expect(headers).toHaveLength(2);

    const found = await f.fleet.logs(m.id, 10, { search: "Synapse Host-Agent: STARTING" });
    expect(found.lines).toEqual(headers);
    expect(found.search).toMatchObject({ text: "Synapse Host-Agent: STARTING", matches: 2 });
    if (older) {
      expect(found.search).toMatchObject({ searchedAll: false, searchedBytes: null, note: `searched the last ${file.length} lines only: the agent on host local predates whole-log search (log-search); update it to search the whole log` });
    } else {
      expect(found.search).toMatchObject({ searchedAll: true, note: null });
      expect(found.search!.searchedBytes).toBe((await readFile(tail.logPath!)).length);
    }
    const one = await f.fleet.logs(m.id, 1, { search: "starting alpha" });
    expect([one.lines, one.search?.matches]).toEqual([[headers[1]], 2]);
  });
});
