/**
 * Discover through the router (`models.discover`, then `models.setEnabled` by
 * the report's ids), as the dashboard's Discover drives it: a real runtime
 * (SQLite file, local link's agent) scanning real tiny GGUF files. A scan
 * lists every file it found with its registry status, new or registered
 * (enabled or not), and a registered-but-disabled model is enabled from the
 * report as a new one is, without a second registry row.
 */
import { TRPCError } from "@trpc/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tinyModel } from "../../../host-agent/test/harness/tiny-model";
import { snapshot } from "../services/registry/test-support";
import { callerRuntime, type CallerRuntime } from "../services/fleet/testing/caller-runtime";

let fx: CallerRuntime;

beforeAll(async () => {
  fx = await callerRuntime("synapse-discover-router-", "discover-router");
});
afterAll(async () => {
  await fx?.dispose();
});

/** name → enabled, for every model the registry holds (one entry per row). */
async function registry(): Promise<[string, boolean][]> {
  return (await fx.runtime.db.model.findMany({ orderBy: { name: "asc" }, select: { name: true, enabled: true } })).map((m) => [m.name, m.enabled]);
}

describe("models.discover and models.setEnabled", () => {
  it("lists new and registered files with their status; a registered-but-disabled one is enabled by its id, no duplicate row", async () => {
    const { caller, dirs } = fx;
    await tinyModel(dirs.modelRoot, "alpha.gguf");
    await tinyModel(dirs.modelRoot, "bravo.gguf");
    // Registered earlier (by hand, left disabled): the scan finds its file.
    const charlieFile = await tinyModel(dirs.modelRoot, "charlie.gguf");
    const charlie = await caller.models.create({ name: "charlie", filePath: charlieFile, port: 18_090 });
    expect(charlie.enabled).toBe(false);

    const first = await caller.models.discover({});
    expect(first.added.map((a) => a.name)).toEqual(["alpha", "bravo"]);
    expect(first.registered).toEqual([{ id: charlie.id, name: "charlie", filePath: charlieFile, port: 18_090, enabled: false }]);
    expect(first.skipped).toEqual([]);

    // The dashboard's one action for both: enable a new one and the registered, disabled one.
    for (const id of [first.added[0]!.id, first.registered[0]!.id]) await caller.models.setEnabled({ id, enabled: true });
    expect(await registry()).toEqual([
      ["alpha", true],
      ["bravo", false],
      ["charlie", true],
    ]);

    // Scanning again adds nothing and lists all three as registered, with what is enabled now.
    const second = await caller.models.discover({});
    expect(second.added).toEqual([]);
    expect(second.registered.map((r) => [r.name, r.enabled])).toEqual([
      ["alpha", true],
      ["bravo", false],
      ["charlie", true],
    ]);
    expect(second.registered.find((r) => r.name === "bravo")?.id).toBe(first.added[1]!.id);
    await caller.models.setEnabled({ id: second.registered.find((r) => r.name === "bravo")!.id, enabled: true });
    expect(await registry()).toEqual([
      ["alpha", true],
      ["bravo", true],
      ["charlie", true],
    ]);
  });

  it("enabling a model removed since the scan is NOT_FOUND naming it, and writes nothing", async () => {
    const { caller, dirs } = fx;
    await tinyModel(dirs.modelRoot, "delta.gguf");
    const report = await caller.models.discover({});
    const delta = report.added.find((a) => a.name === "delta")!;
    await caller.models.delete({ id: delta.id });
    const before = await snapshot(fx.runtime.db);
    const err = await caller.models.setEnabled({ id: delta.id, enabled: true }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TRPCError);
    expect((err as TRPCError).code).toBe("NOT_FOUND");
    expect((err as TRPCError).message).toContain(delta.id);
    expect(await snapshot(fx.runtime.db)).toEqual(before);
  });
});
