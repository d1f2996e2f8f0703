/** Start plans and eviction choices on plain numbers (bytes), with the messages a person reads. */
import { describe, expect, it } from "vitest";
import type { MemoryEstimate } from "./estimate-types";
import { chooseEvictions, mayFitLater, type EvictionCandidate } from "./eviction";
import { planStarts, type Candidate } from "./plan";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function est(weights: number, kv: number, compute: number, unit = GiB, promptCache = 0): MemoryEstimate {
  const e = { weightsBytes: weights * unit, kvCacheBytes: kv * unit, computeBytes: compute * unit, promptCacheBytes: promptCache * unit, notes: [] as string[] };
  return { ...e, totalBytes: e.weightsBytes + e.kvCacheBytes + e.computeBytes + e.promptCacheBytes };
}

/** A model whose KV cache is proportional to its context (as llama.cpp's is, for full-attention layers). */
function candidate(name: string, weights: number, kvAt32k: number, compute: number, ctxSize = 32768): Candidate {
  return candidateIn(GiB, name, weights, kvAt32k, compute, ctxSize);
}

function candidateIn(unit: number, name: string, weights: number, kvAt32k: number, compute: number, ctxSize = 32768): Candidate {
  const at = (ctx: number) => est(weights, (kvAt32k * ctx) / 32768, compute, unit);
  return { modelId: name, name, ctxSize, estimate: at(ctxSize), atContext: at };
}

describe("planStarts", () => {
  it("refuses what does not fit with the numbers, which model to stop and what context would fit", () => {
    const plan = planStarts({
      host: "mac-studio",
      budgetBytes: 36 * GiB,
      running: [
        { modelId: "llama-8b", name: "llama-8b", estimate: est(4.9, 1.0, 0.2) },
        { modelId: "gemma-12b", name: "gemma-12b", estimate: est(14.0, 2.9, 0.3) },
      ],
      candidates: [candidate("qwen-32b", 18.6, 20, 0.3, 32768)],
    });
    const v = plan.verdicts[0]!.verdict;
    expect(v.kind).toBe("refused");
    // 36 - 6.1 - 17.2 = 12.7 GiB left; qwen-32b needs 38.9, more than the whole budget at its context, and no
    // lower context fits in 12.7 (weights and compute alone are 18.9). At 16384 it needs 28.9: stopping
    // gemma-12b leaves 29.9. (It used to say "larger than the whole budget", which it is not at 16384.)
    expect(v.kind === "refused" && v.message).toBe("qwen-32b needs 38.9 GiB (weights 18.6, KV cache 20.0, compute 0.3); mac-studio has 12.7 of 36.0 GiB left; stop gemma-12b (17.2 GiB) and lower its context to 16384");
  });

  it("stops another model and lowers the context when neither alone is enough (a small budget another model fills)", () => {
    // The tiny-model case a user met: 20 MiB budget, another model holding all of it; at 32768 the model
    // needs 30.0 MiB (more than the budget), at 16384 17.0 MiB, which fits once the other is stopped.
    const plan = planStarts({ host: "local", budgetBytes: 20 * MiB, running: [{ modelId: "other", name: "other", estimate: est(20, 0, 0, MiB) }], candidates: [candidateIn(MiB, "tiny", 4, 26, 0, 32768)] });
    const v = plan.verdicts[0]!.verdict;
    expect(v.kind === "refused" && v.message).toBe("tiny needs 30.0 MiB (weights 4.0, KV cache 26.0, compute 0.0); local has 0.0 of 20.0 MiB left; stop other (20.0 MiB) and lower its context to 16384");
  });

  it("prefers stopping fewer models, at the largest context that then fits", () => {
    // 10 left. At 32768 it needs 40, more than the budget (30); no lower context fits in 10 (512: 12.4).
    // At 16384 it needs 26: stopping c and b (16 more). At 8192 it needs 19: stopping c alone (10 more).
    const plan = planStarts({
      host: "h",
      budgetBytes: 30 * GiB,
      running: [
        { modelId: "a", name: "a", estimate: est(4, 0, 0) },
        { modelId: "b", name: "b", estimate: est(6, 0, 0) },
        { modelId: "c", name: "c", estimate: est(10, 0, 0) },
      ],
      candidates: [candidate("m", 12, 28, 0, 32768)],
    });
    const v = plan.verdicts[0]!.verdict;
    expect(v.kind === "refused" && v.message).toBe("m needs 40.0 GiB (weights 12.0, KV cache 28.0, compute 0.0); h has 10.0 of 30.0 GiB left; stop c (10.0 GiB) and lower its context to 8192");
  });

  it("says it is larger than the whole budget only when even the smallest context does not fit an empty host", () => {
    const big = planStarts({ host: "h", budgetBytes: 8 * GiB, running: [{ modelId: "r", name: "r", estimate: est(2, 0, 0) }], candidates: [candidate("huge", 9, 4, 0, 32768)] });
    const v = big.verdicts[0]!.verdict;
    expect(v.kind === "refused" && v.message).toBe("huge needs 13.0 GiB (weights 9.0, KV cache 4.0, compute 0.0); h has 6.0 of 8.0 GiB left; even at context 512 it is larger than the whole budget: give h a larger memory budget or use a smaller quantization");
    // Without a way to estimate other contexts, the sentence is about its context.
    const fixedCtx = planStarts({ host: "h", budgetBytes: 8 * GiB, running: [], candidates: [{ ...candidate("huge", 9, 4, 0, 32768), atContext: undefined }] });
    expect(fixedCtx.verdicts[0]!.verdict.kind === "refused" && fixedCtx.verdicts[0]!.verdict.message).toMatch(/; it is larger than the whole budget: give h a larger memory budget or use a smaller quantization$/);
  });

  it("names the smallest running model whose stop is enough, and the largest context that fits", () => {
    const plan = planStarts({
      host: "mac-studio",
      budgetBytes: 36 * GiB,
      running: [
        { modelId: "llama-8b", name: "llama-8b", estimate: est(4.9, 1.0, 0.2) },
        { modelId: "gemma-12b", name: "gemma-12b", estimate: est(14.0, 2.9, 0.3) },
      ],
      candidates: [candidate("qwen-32b", 18.6, 2.5, 0.3, 32768)],
    });
    const v = plan.verdicts[0]!.verdict;
    expect(v).toMatchObject({ kind: "refused", budgetBytes: 36 * GiB });
    expect(v.kind === "refused" && v.neededBytes / GiB).toBeCloseTo(21.4, 6);
    // 12.7 left: weights 18.6 alone do not fit at any context, so the only way is to stop a model; stopping llama-8b (6.1) leaves 18.8 < 21.4: gemma-12b (17.2) is the smallest that is enough.
    expect(v.kind === "refused" && v.message).toBe("qwen-32b needs 21.4 GiB (weights 18.6, KV cache 2.5, compute 0.3); mac-studio has 12.7 of 36.0 GiB left; stop gemma-12b (17.2 GiB)");
  });

  it("suggests a smaller context when that alone makes it fit", () => {
    const plan = planStarts({ host: "mac-mini", budgetBytes: 16 * GiB, running: [], candidates: [candidate("llama-8b", 4.9, 16, 0.3, 32768)] });
    const v = plan.verdicts[0]!.verdict;
    // 16 left; at 16384 the KV cache is 8: 13.2 fits; at 32768 it is 21.2.
    expect(v.kind === "refused" && v.message).toBe("llama-8b needs 21.2 GiB (weights 4.9, KV cache 16.0, compute 0.3); mac-mini has 16.0 of 16.0 GiB left; lower its context to 16384");
  });

  it("charges each start before looking at the next, in the order given; force starts it anyway", () => {
    const cands = [candidate("a", 300, 0, 0), candidate("b", 300, 0, 0), candidate("c", 100, 0, 0)].map((c) => ({ ...c, estimate: est(Number(c.name === "c" ? 100 : 300), 0, 0, MiB), atContext: undefined }));
    const plan = planStarts({ host: "small", budgetBytes: 512 * MiB, running: [], candidates: cands });
    expect(plan.verdicts.map((v) => v.verdict.kind)).toEqual(["fits", "refused", "fits"]);
    expect(plan.verdicts[1]!.verdict).toMatchObject({ message: "b needs 300.0 MiB (weights 300.0, KV cache 0.0, compute 0.0); small has 212.0 of 512.0 MiB left; stop a (300.0 MiB)" });
    const forced = planStarts({ host: "small", budgetBytes: 512 * MiB, running: [], candidates: cands, force: true });
    // Forced starts run, so they are charged: c no longer fits either, and is forced too.
    expect(forced.verdicts.map((v) => v.verdict.kind)).toEqual(["fits", "forced", "forced"]);
  });

  it("starts without a check, saying why, when there is no estimate or no budget; names running models it could not count", () => {
    const none = planStarts({ host: "h", budgetBytes: 8 * GiB, running: [{ modelId: "x", name: "x", estimate: { unavailable: "no GGUF summary" } }], candidates: [{ modelId: "m", name: "m", ctxSize: 4096, estimate: { unavailable: "no memory estimate for m: its shape was never read" } }, candidate("big", 9, 0, 0)] });
    expect(none.verdicts[0]!.verdict).toEqual({ kind: "unchecked", note: "started without a memory check: no memory estimate for m: its shape was never read" });
    expect(none.verdicts[1]!.verdict.kind === "refused" && none.verdicts[1]!.verdict.message).toMatch(/^big needs 9\.0 GiB .*; h has 8\.0 of 8\.0 GiB left \(not counting x, m, which have no estimate\); /);
    const noBudget = planStarts({ host: "h", budgetBytes: null, budgetWhy: "update the agent on h", running: [], candidates: [candidate("a", 1, 0, 0)] });
    expect(noBudget.verdicts[0]!.verdict).toEqual({ kind: "unchecked", note: "started without a memory check: update the agent on h" });
  });

  it("does not charge the prompt cache's cap (host memory that fills as prompts are cached)", () => {
    const plan = planStarts({ host: "h", budgetBytes: 8 * GiB, running: [{ modelId: "r", name: "r", estimate: est(2, 0, 0, GiB, 8) }], candidates: [{ modelId: "m", name: "m", ctxSize: 4096, estimate: est(4, 1, 0.5, GiB, 8) }] });
    expect(plan.verdicts[0]!.verdict).toMatchObject({ kind: "fits", neededBytes: 5.5 * GiB, leftBytes: 0.5 * GiB });
    expect(plan.usedBytes).toBe(2 * GiB);
    const tight = planStarts({ host: "h", budgetBytes: 5 * GiB, running: [], candidates: [{ modelId: "m", name: "m", ctxSize: 4096, estimate: est(4, 1, 0.5, GiB, 8) }] });
    expect(tight.verdicts[0]!.verdict.kind === "refused" && tight.verdicts[0]!.verdict.message).toMatch(/^m needs 5\.5 GiB \(weights 4\.0, KV cache 1\.0, compute 0\.5\); h has 5\.0 of 5\.0 GiB left; /);
  });
});

describe("chooseEvictions", () => {
  const r = (name: string, gib: number, loadPolicy: string, inFlight: number, lastUsedAt: number | null): EvictionCandidate => ({ modelId: name, name, estimate: est(gib, 0, 0), loadPolicy, inFlight, lastUsedAt });

  it("stops least recently used idle on-demand models until it fits; never always models or busy ones", () => {
    const running = [r("always-big", 10, "always", 0, null), r("busy", 6, "on-demand", 1, 1), r("old", 4, "on-demand", 0, 100), r("older", 3, "on-demand", 0, 50), r("newest", 5, "on-demand", 0, 500)];
    // Budget 30, used 28: 2 left. Need 8 (6 short): older (3), then old (4). Need 10 (8 short): newest too.
    expect(chooseEvictions(30 * GiB, running, est(8, 0, 0))?.map((e) => e.name)).toEqual(["older", "old"]);
    expect(chooseEvictions(30 * GiB, running, est(10, 0, 0))?.map((e) => e.name)).toEqual(["older", "old", "newest"]);
    expect(chooseEvictions(30 * GiB, running, est(5, 0, 0))?.map((e) => e.name)).toEqual(["older"]);
    expect(chooseEvictions(30 * GiB, running, est(2, 0, 0))).toEqual([]);
  });

  it("chooses nothing when even every candidate together is not enough", () => {
    const running = [r("always-big", 10, "always", 0, null), r("busy", 6, "on-demand", 1, 1), r("idle", 4, "on-demand", 0, 100)];
    expect(chooseEvictions(20 * GiB, running, est(9, 0, 0))).toBeNull();
  });

  it("a model never used since the app started goes first", () => {
    const running = [r("used", 4, "on-demand", 0, 100), r("never", 4, "on-demand", 0, null)];
    expect(chooseEvictions(8 * GiB, running, est(4, 0, 0))?.map((e) => e.name)).toEqual(["never"]);
  });
});

describe("mayFitLater: whether waiting can help a start refused for memory", () => {
  const held = (name: string, gib: number, mayGo: boolean) => ({ modelId: name, name, estimate: est(gib, 0, 0), mayGo });

  it("no: the only other model stays (always), and it leaves too little room", () => {
    expect(mayFitLater(36 * GiB, [held("steady", 20, false)], est(20, 0, 0))).toBe(false);
  });

  it("yes: the room is held by models that may go by themselves (on demand, stopping, a start under way)", () => {
    expect(mayFitLater(36 * GiB, [held("steady", 10, false), held("on-demand", 20, true)], est(20, 0, 0))).toBe(true);
  });

  it("no: even with every model that may go gone, what stays leaves too little", () => {
    expect(mayFitLater(36 * GiB, [held("steady", 20, false), held("on-demand", 10, true)], est(20, 0, 0))).toBe(false);
  });

  it("no: larger than the whole budget, on an empty host", () => {
    expect(mayFitLater(36 * GiB, [], est(40, 0, 0))).toBe(false);
  });

  it("models without an estimate are not charged (as the plan does not charge them)", () => {
    expect(mayFitLater(36 * GiB, [{ modelId: "x", name: "x", estimate: { unavailable: "no shape" }, mayGo: false }], est(20, 0, 0))).toBe(true);
  });
});
