/**
 * A renamed model's log follows it (log-move.ts), against a real SQLite file,
 * the real local agent and llama-server with a tiny model: started, stopped,
 * renamed, the fleet's `logs` under the new name reads what the old run
 * wrote. With an agent older than "rename-logs" (stand-in-older-agent) or a
 * host that cannot be reached, the rename is saved all the same and an event
 * after the rename's says the log stayed under the old name and what to do.
 */
import { execFileSync } from "node:child_process";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fleetFixture, type FleetFixture } from "../fleet/testing/fixture";
import { standInOlderAgents } from "../fleet/testing/stand-in-older-agent";
import { agentLogMover } from "./log-move";
import { updateModel } from "./models";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

/** Starts and stops `modelId` through the fleet: its log then holds a whole run. */
async function runOnce(f: FleetFixture, modelId: string) {
  expect((await f.fleet.start(modelId)).state).toBe("ready");
  expect((await f.fleet.stop(modelId)).state).toBe("stopped");
}

/** The rename's events, oldest first: the edit, then where its log is (kind and message). */
async function renameEvents(f: FleetFixture, modelId: string) {
  const rows = await f.t.db.event.findMany({ where: { modelId, message: { contains: "renamed" } }, orderBy: { id: "asc" } });
  return rows.map((e) => [e.kind, e.message]);
}

/** A stopped model "far-model" on an ssh host "far-mac" that cannot be reached (port 1 on loopback: nothing listens there). */
async function farModel(f: FleetFixture) {
  const key = path.join(f.dirs.root, "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
  const far = await f.t.db.host.create({ data: { name: "far-mac", linkKind: "ssh", sshHost: "127.0.0.1", sshPort: 1, sshUser: "me", sshIdentityFile: key } });
  return f.t.db.model.create({ data: { name: "far-model", hostId: far.id, filePath: "/Users/me/models/x.gguf", port: 8100, server: { create: { desired: "stopped" } } } });
}

describe("renaming a stopped model", () => {
  it("moves its log on the host: the fleet's logs under the new name read the old run, and nothing is left under the old name", async () => {
    const f = (fx = await fleetFixture());
    const m = await f.addModel("before");
    await runOnce(f, m.id);
    const saved = await updateModel(f.t.db, { id: m.id, name: "after" }, { appPort: 3000, moveLogs: agentLogMover(f.links), events: f.events });
    const logPath = path.join(f.dirs.stateDir, "logs", "after.log");
    expect(saved).toMatchObject({ name: "after", logMove: { moved: true, note: `its log moved to ${logPath} on host local` } });

    const logs = await f.fleet.logs(m.id, 5000);
    expect(logs).toMatchObject({ name: "after", logPath });
    expect(logs.lines.some((l) => l.startsWith("=== synapse host-agent: starting before at "))).toBe(true);
    expect(logs.lines.some((l) => /listening on http:\/\/127\.0\.0\.1:\d+/.test(l))).toBe(true);
    expect(await renameEvents(f, m.id)).toEqual([
      ["action", "model before renamed to after (name)"],
      ["action", `model after, renamed from before: its log moved to ${logPath} on host local`],
    ]);
    // The old name has no log left on the host (a new model named "before" starts a log of its own).
    const local = await f.links.get(f.host);
    await expect(local.call("logs", { id: "before" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("with an agent older than rename-logs: the rename is saved, the log stays under the old name, and the event says to update the agent on the host", async () => {
    const f = (fx = await fleetFixture({ viewLinks: standInOlderAgents }));
    const m = await f.addModel("before");
    await runOnce(f, m.id);
    const saved = await updateModel(f.t.db, { id: m.id, name: "after" }, { appPort: 3000, moveLogs: agentLogMover(standInOlderAgents(f.links)), events: f.events });
    const note = "its log stayed under before on host local: the agent there cannot move logs; update the agent on local";
    expect(saved).toMatchObject({ name: "after", logMove: { moved: false, note } });
    expect((await f.t.db.model.findUniqueOrThrow({ where: { id: m.id } })).name).toBe("after");
    expect(await renameEvents(f, m.id)).toEqual([
      ["action", "model before renamed to after (name)"],
      ["error", `model after, renamed from before: ${note}`],
    ]);
    // The log is whole on the host, under the old name.
    const local = await f.links.get(f.host);
    const kept = await local.call("logs", { id: "before", lines: 5000 });
    expect(kept.lines.some((l) => l.startsWith("=== synapse host-agent: starting before at "))).toBe(true);
  });

  it("with a log already under the new name: the rename is saved, both logs stay as they were, and the event says why", async () => {
    const f = (fx = await fleetFixture());
    const m = await f.addModel("before");
    const other = await f.addModel("other");
    await runOnce(f, m.id);
    await runOnce(f, other.id);
    // "other" gives up its name (its log follows it), then a new run under "other" writes a log there again.
    await updateModel(f.t.db, { id: other.id, name: "other-2" }, { appPort: 3000, moveLogs: agentLogMover(f.links), events: f.events });
    const taker = await f.addModel("other");
    await runOnce(f, taker.id);
    await f.t.db.model.delete({ where: { id: taker.id } });
    const local = await f.links.get(f.host);
    const takenBefore = (await local.call("logs", { id: "other", lines: 5000 })).lines;

    const saved = await updateModel(f.t.db, { id: m.id, name: "other" }, { appPort: 3000, moveLogs: agentLogMover(f.links), events: f.events });
    const dir = path.join(f.dirs.stateDir, "logs");
    const note = `its log stayed under before on host local: server other already has a log (${path.join(dir, "other.log")}); the log of before stays at ${path.join(dir, "before.log")}`;
    expect(saved).toMatchObject({ name: "other", logMove: { moved: false, note } });
    expect(await renameEvents(f, m.id)).toEqual([
      ["action", "model before renamed to other (name)"],
      ["error", `model other, renamed from before: ${note}`],
    ]);
    expect((await local.call("logs", { id: "other", lines: 5000 })).lines).toEqual(takenBefore);
    expect((await local.call("logs", { id: "before", lines: 5000 })).lines.some((l) => l.startsWith("=== synapse host-agent: starting before at "))).toBe(true);
  });

  it("on a host that cannot be reached: the rename is saved and the event says the log stayed there", async () => {
    const f = (fx = await fleetFixture());
    const m = await farModel(f);
    const saved = await updateModel(f.t.db, { id: m.id, name: "far-renamed" }, { appPort: 3000, moveLogs: agentLogMover(f.links, { timeoutMs: 3_000 }), events: f.events });
    expect(saved.name).toBe("far-renamed");
    expect(saved.logMove).toEqual({ moved: false, note: expect.stringMatching(/^its log stayed under far-model on host far-mac: the host could not be reached \(.+\)$/) });
    expect(await renameEvents(f, m.id)).toEqual([
      ["action", "model far-model renamed to far-renamed (name)"],
      ["error", `model far-renamed, renamed from far-model: ${saved.logMove!.note}`],
    ]);
  });

  it("renamed and moved to another host in one edit: the log stays on the old host under the old name, and the event says so", async () => {
    const f = (fx = await fleetFixture());
    const m = await farModel(f);
    const asked: string[] = [];
    const saved = await updateModel(f.t.db, { id: m.id, name: "near-model", hostId: f.host.id }, { appPort: 3000, moveLogs: async (host) => (asked.push(host.name), { moved: true, note: "asked" }), events: f.events });
    expect(saved).toMatchObject({ name: "near-model", hostId: f.host.id, logMove: { moved: false, note: "its log stayed under far-model on host far-mac, its old host" } });
    expect(asked).toEqual([]);
    expect(await renameEvents(f, m.id)).toEqual([
      ["action", "model far-model renamed to near-model (name, hostId)"],
      ["error", "model near-model, renamed from far-model: its log stayed under far-model on host far-mac, its old host"],
    ]);
  });
});
