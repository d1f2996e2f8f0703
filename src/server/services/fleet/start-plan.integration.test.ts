/**
 * The start plan with the registry its caller read (start-all reads it once for the rows to start and
 * their hosts' plans): a model of the host that is not in that read but runs or is starting (created and
 * started since) still counts against the budget. Real SQLite file; no processes (entries set by hand).
 */
import { afterEach, expect, it } from "vitest";
import { getSettings } from "~/server/services/registry/settings";
import { weightsOnlyEstimator } from "../memory/model-estimator";
import { createContext } from "./context";
import { createEventBus } from "./events";
import { createHostMemoryStore } from "./host-memory";
import type { LinkPool } from "./links";
import type { ModelRow } from "./server-table";
import { createStartPlanner } from "./start-plan";
import { testDb, testLogger, type TestDb } from "./testing/db";

let t: TestDb | null = null;
afterEach(async () => {
  await t?.cleanup();
  t = null;
});

const MiB = 1024 ** 2;

it("a model the caller's registry read missed, running or starting on the host, is counted: the plan reads the host again", async () => {
  t = testDb("synapse-start-plan-");
  const db = t.db;
  const host = await db.host.create({ data: { name: "local", linkKind: "local", memoryBudgetMiB: 100 } });
  const beta = await db.model.create({ data: { name: "beta", hostId: host.id, filePath: "/m/b.gguf", port: 9002, enabled: true, sizeBytes: 60 * MiB }, include: { host: true, server: true } });
  const settings = await getSettings(db);
  // What start-all read: beta only. Then alpha was created and started (its entry says starting).
  const registry = { models: [beta] as ModelRow[], settings };
  const alpha = await db.model.create({ data: { name: "alpha", hostId: host.id, filePath: "/m/a.gguf", port: 9001, enabled: true, sizeBytes: 60 * MiB } });
  const events = await createEventBus({ db, log: testLogger() });
  const ctx = createContext({ db, links: {} as LinkPool, events, log: testLogger(), appPort: 3000 });
  const planner = createStartPlanner(ctx, createHostMemoryStore({ now: Date.now, hasFeature: () => false }), weightsOnlyEstimator);

  // Nothing else on the host: the caller's read is used, and beta fits.
  const alone = await planner.planHost(host, null, [beta], { registry });
  expect(alone.admitted.map((a) => [a.row.name, a.verdict?.kind])).toEqual([["beta", "fits"]]);

  ctx.table.remember(alpha).state = "starting";
  const plan = await planner.planHost(host, null, [beta], { registry });
  expect(plan.admitted).toEqual([]);
  expect(plan.refused.map((r) => r.row.name)).toEqual(["beta"]);
  expect(plan.refused[0]!.verdict.message).toMatch(/^beta needs 60\.0 MiB.*; local has 40\.0 of 100\.0 MiB left; stop alpha \(60\.0 MiB\)$/);
  await events.close();
});
