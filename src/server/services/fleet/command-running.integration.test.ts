/**
 * The model page's command line tells what runs from what the next start runs, for real: a model started
 * with --threads 1, then saved with 2 while it runs. The preview (models.commandPreview, what the panel
 * shows) says the running process is not up to date and gives its own arguments beside the next start's;
 * after a restart both agree. The local link, the real agent and llama-server.
 */
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { commandPreview } from "~/server/services/preview";
import { updateModel } from "~/server/services/registry/models";
import { fleetFixture, type FleetFixture } from "./testing/fixture";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

const valueOf = (args: readonly string[], flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);

describe("the command line of a running model", () => {
  it("a saved change not yet applied: the running process's arguments and the next start's, told apart; a restart applies it", async () => {
    const f = (fx = await fleetFixture());
    const m = await f.addModel("cmd-running");
    await f.t.db.model.update({ where: { id: m.id }, data: { threads: 1 } });
    const runtime = { db: f.t.db, links: f.links };

    expect((await commandPreview(runtime, m.id)).running).toBeNull();
    const first = await f.fleet.start(m.id);
    expect(first.state).toBe("ready");
    const same = await commandPreview(runtime, m.id);
    expect(same.running).toEqual({ pid: first.pid, upToDate: true, args: same.args });

    await updateModel(f.t.db, { id: m.id, threads: 2 }, { appPort: 3000 });
    const pending = await commandPreview(runtime, m.id);
    expect(valueOf(pending.args, "--threads")).toBe("2");
    expect(pending.running).toMatchObject({ pid: first.pid, upToDate: false });
    expect(valueOf(pending.running!.args!, "--threads")).toBe("1");
    // What the agent reports is what the process runs (its argv after the binary).
    const cmdline = (await readFile(`/proc/${first.pid}/cmdline`, "utf8")).split("\0").filter((a) => a !== "");
    expect(cmdline.slice(1)).toEqual(pending.running!.args);

    await f.fleet.stop(m.id);
    expect((await commandPreview(runtime, m.id)).running).toBeNull();
    const second = await f.fleet.start(m.id);
    const applied = await commandPreview(runtime, m.id);
    expect(applied.running).toEqual({ pid: second.pid, upToDate: true, args: applied.args });
    expect(valueOf(applied.running!.args!, "--threads")).toBe("2");
    await f.fleet.stop(m.id);
  });
});
