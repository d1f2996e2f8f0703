/**
 * A host's agent note. Its llama-server line (the hosts page's "llama-server" row): what the agent
 * resolved, kept current. A host whose agent found no llama-server is asked again on later reconciles (every few seconds, in the background),
 * so once the user follows the page's advice (npm run llama:build, a binary at the configured path) the
 * line names the binary and its version without an app restart. Its model folders: what the agent scans.
 */
import { mkdir, symlink } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { fleetFixture, waitFor, type FleetFixture } from "./testing/fixture";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

describe("agent note: llama-server", () => {
  it("a binary that appears after the agent said none was found is named at a later reconcile", async () => {
    const f = (fx = await fleetFixture());
    const configured = path.join(f.dirs.root, "later", "llama-server");
    await f.t.db.host.update({ where: { id: f.host.id }, data: { llamaServerBin: configured } });
    await f.fleet.reconcile(f.host.id);
    const before = f.fleet.agent(f.host.id)!.llamaServer;
    expect(before.error).toContain(configured);
    expect(before.version).toBeNull();

    await mkdir(path.dirname(configured), { recursive: true });
    await symlink(f.bin, configured);
    const after = await waitFor("the note to name the binary", async () => {
      await f.fleet.reconcile(f.host.id);
      const note = f.fleet.agent(f.host.id)!.llamaServer;
      return note.error === null ? note : null;
    }, 20_000, 250);
    expect(after.path).toBe(configured);
    expect(after.version).toMatch(/\S/);
  });

  it("names the folders the agent scans (its hello's modelRoots: the hosts page and Discover show them)", async () => {
    const f = (fx = await fleetFixture());
    expect(f.fleet.agent(f.host.id)).toBeNull();
    await f.fleet.reconcile(f.host.id);
    expect(f.fleet.agent(f.host.id)!.modelRoots).toEqual([path.resolve(f.dirs.modelRoot)]);
  });
});
