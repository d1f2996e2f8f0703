/**
 * A gateway on a host with a memory budget set by hand, and models whose size it knows, for the tests of
 * what the gateway does when a start does not fit (eviction.integration.test.ts,
 * memory-refusal-retry.integration.test.ts): the project's GGUF writer makes the files, the registry keeps
 * their size as discovery would.
 */
import { stat } from "node:fs/promises";
import { writeTinyModel, type TinyModelOptions } from "../../../../host-agent/src/gguf/tiny-model";
import { upsertHost } from "~/server/services/registry/hosts";
import { gatewayFixture, type GatewayFixture } from "./gateway-fixture";

/** The host's budget (MiB): two SHAPE models fit, three do not, and HUGE fits beside none. */
export const BUDGET_MIB = 56;
/** About 21 MiB of f32 weights. */
export const SHAPE: TinyModelOptions = { embedding: 512, layers: 2, heads: 4, feedForward: 1024, contextLength: 4096 };
/** About 39 MiB: more than the budget holds next to one SHAPE model. */
export const HUGE: TinyModelOptions = { ...SHAPE, feedForward: 2560 };

/** gatewayFixture on a local host whose memory budget is BUDGET_MIB. */
export async function budgetedGateway(): Promise<GatewayFixture> {
  const g = await gatewayFixture();
  await upsertHost(g.f.t.db, { id: g.f.host.id, name: g.f.host.name, linkKind: "local", memoryBudgetMiB: BUDGET_MIB });
  return g;
}

/** A model of `shape` (context 4096) with its file written and its size stored (what discovery stores: the plan's estimate of the weights). */
export async function addSized(g: GatewayFixture, name: string, shape: TinyModelOptions, loadPolicy: "always" | "on-demand" = "on-demand") {
  const m = await g.addModel(name, { loadPolicy, ctxSize: 4096 });
  await writeTinyModel(m.filePath, { ...shape, seed: name.length });
  return g.f.t.db.model.update({ where: { id: m.id }, data: { sizeBytes: (await stat(m.filePath)).size } });
}
