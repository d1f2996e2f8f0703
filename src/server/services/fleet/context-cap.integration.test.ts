/**
 * A model on the global default context runs with no more than its GGUF's trained context, for real: a
 * small model whose `llama.context_length` is 4096, the default 32768 in a real SQLite file, discovery,
 * the local link and the real llama-server. The running server is given 4096 (its argv, from the process
 * table), the command preview shows the same and says why, and the memory plan charges 4096: a budget
 * with room for 4096 but not for 32768 starts it. An explicit per-model 8192 runs as 8192.
 */
import { readFile } from "node:fs/promises";
import { freePort } from "../../../../host-agent/test/harness/ports";
import { afterEach, describe, expect, it } from "vitest";
import { tinyModel } from "../../../../host-agent/test/harness/tiny-model";
import { estimateForModel } from "~/server/services/memory/estimate";
import { chargedBytes, hasEstimate, type Estimate } from "~/server/services/memory/plan";
import { commandPreview } from "~/server/services/preview";
import { upsertHost } from "~/server/services/registry/hosts";
import { getSettings } from "~/server/services/registry/settings";
import { fleetFixture, type FleetFixture } from "./testing/fixture";

let fx: FleetFixture | null = null;
afterEach(async () => {
  const f = fx;
  fx = null;
  await f?.dispose();
});

const TRAINED = 4096;
const DEFAULT_CTX = 32768;
const MiB = 1024 ** 2;
/** About 22 MiB of weights (as memory-plan's): budgets start at 16 MiB, and 4096 KV cells are 16 MiB, 32768 are 128. */
const SHAPE = { embedding: 512, layers: 2, heads: 4, feedForward: 1024, contextLength: TRAINED };

/**
 * The `--ctx-size` the running process was given (/proc/<pid>/cmdline): the KV cells it allocates. Not
 * /props' n_ctx: this llama-server caps each slot at n_ctx_train there, yet still allocates every
 * `--ctx-size` cell.
 */
async function ctxArg(pid: number): Promise<string | undefined> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
  return argv[argv.indexOf("--ctx-size") + 1];
}

function charged(e: Estimate): number {
  if (!hasEstimate(e)) throw new Error(e.unavailable);
  return chargedBytes(e);
}

describe("the default context never exceeds the model's trained context", () => {
  it("a model on the default 32768 whose GGUF says 4096 runs, previews and is planned at 4096; an explicit 8192 runs as 8192", async () => {
    const f = (fx = await fleetFixture());
    await f.t.db.runtimeSettings.update({ where: { id: 1 }, data: { ctxSize: DEFAULT_CTX } });
    await tinyModel(f.dirs.modelRoot, "trained-4k.gguf", SHAPE);
    const report = await f.fleet.discover(f.host.id);
    expect(report.added).toHaveLength(1);
    // A port of its own: discovery numbers from 8080, which another server on this machine may hold.
    const row = await f.t.db.model.update({ where: { id: report.added[0]!.id }, data: { port: await freePort() } });
    expect(row).toMatchObject({ contextLength: TRAINED, ctxSize: null });
    const settings = await getSettings(f.t.db);
    expect(settings.ctxSize).toBe(DEFAULT_CTX);

    // The model page's command line: what will run, and why it is below the default.
    const preview = await commandPreview({ db: f.t.db, links: f.links }, row.id);
    expect(preview.args[preview.args.indexOf("--ctx-size") + 1]).toBe(String(TRAINED));
    expect(preview.contextNote).toBe(`the model's own context (${TRAINED}) is below the default ${DEFAULT_CTX}`);

    // The plan charges 4096 cells: a budget with room for that but not for 32768 starts it.
    const capped = charged(estimateForModel(row, settings));
    expect(capped).toBe(charged(estimateForModel({ ...row, ctxSize: TRAINED }, settings)));
    const atDefault = charged(estimateForModel({ ...row, ctxSize: DEFAULT_CTX }, settings));
    const budgetMiB = Math.ceil(capped / MiB) + 1;
    expect(budgetMiB * MiB).toBeLessThan(atDefault);
    await upsertHost(f.t.db, { id: f.host.id, name: f.host.name, linkKind: "local", memoryBudgetMiB: budgetMiB });

    const started = await f.fleet.start(row.id);
    expect(started).toMatchObject({ state: "ready", memory: { verdict: "fits", neededBytes: capped } });
    expect(await ctxArg(started.pid!)).toBe(String(TRAINED));
    await f.fleet.stop(row.id);

    // An explicit size is the user's (RoPE scaling, say): passed as given, and the preview says nothing of a cap.
    await f.t.db.model.update({ where: { id: row.id }, data: { ctxSize: 8192 } });
    await upsertHost(f.t.db, { id: f.host.id, name: f.host.name, linkKind: "local", memoryBudgetMiB: null });
    const explicit = await commandPreview({ db: f.t.db, links: f.links }, row.id);
    expect(explicit.args[explicit.args.indexOf("--ctx-size") + 1]).toBe("8192");
    expect(explicit.contextNote).toBeNull();
    // But it says what llama-server makes of a size above the trained context.
    expect(explicit.contextWarning).toBe(`8192 is above the model's trained context (${TRAINED}): llama-server serves at most ${TRAINED} tokens a slot, and still allocates the KV cache for 8192`);
    const again = await f.fleet.start(row.id);
    expect(again).toMatchObject({ state: "ready" });
    expect(await ctxArg(again.pid!)).toBe("8192");
  });
});
