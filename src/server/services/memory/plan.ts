/**
 * Start plans (issue 16): which of the models about to start fit in their host's memory budget next to
 * what already runs there, and, for those that do not, a sentence with numbers a person can act on:
 *
 *   qwen-32b needs 21.4 GiB (weights 18.6, KV cache 2.5, compute 0.3); mac-studio has 19.6 of 36.0 GiB
 *   left; stop llama-8b (6.1 GiB) or lower its context to 8192
 *
 * (The issue's own example said 12.9 GiB left, where neither step alone is enough; the advice then
 * combines them: "stop llama-8b (6.1 GiB) and lower its context to N", N the largest that fits.)
 *
 * The advice, in order: stop running models (which, with their sizes); lower its context; when neither
 * alone is enough, stop models and lower its context; "larger than the whole budget" only when even
 * context 512 does not fit an empty host.
 *
 * Pure: estimates and the budget come in as plain numbers (bytes). Candidates are taken in the order given
 * (start-all: priority, then the registry's order); each that fits is charged before the next is looked at.
 */
import type { MemoryEstimate, NoEstimate } from "./estimate-types";

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export type Estimate = MemoryEstimate | NoEstimate;

export function hasEstimate(e: Estimate): e is MemoryEstimate {
  return !("unavailable" in e);
}

/**
 * What a plan charges a server against its host's budget: weights, KV cache and compute buffer, which
 * llama-server allocates at load (on a Mac, in the GPU's working set, which is what the budget measures).
 * Not its prompt cache: `--cache-ram` is a cap in host memory that fills only as prompts are cached
 * (8 GiB per server by default); charging every server its cap at start would refuse starts that run
 * fine (three tiny models on a 24 GiB machine). The estimate still shows it.
 */
export function chargedBytes(e: MemoryEstimate): number {
  return e.totalBytes - e.promptCacheBytes;
}

/** A model that runs (or is starting) on the host: what it holds. */
export interface RunningModel {
  modelId: string;
  name: string;
  estimate: Estimate;
}

/** A model to start. */
export interface Candidate {
  modelId: string;
  name: string;
  estimate: Estimate;
  /** Its context size now (tokens); the advice looks at smaller ones. */
  ctxSize: number;
  /** Its estimate with another context size (for "lower its context to N"); absent: no such advice. */
  atContext?: (ctxSize: number) => Estimate;
}

export interface PlanInput {
  host: string;
  /** Null: the budget is unknown (`budgetWhy`), and nothing is checked. */
  budgetBytes: number | null;
  budgetWhy?: string;
  running: readonly RunningModel[];
  candidates: readonly Candidate[];
  /** Start everything; what does not fit is started anyway, and the verdict says so. */
  force?: boolean;
}

export type Verdict =
  /** Fits: `neededBytes` charged, `leftBytes` left after it. */
  | { kind: "fits"; neededBytes: number; leftBytes: number; budgetBytes: number }
  /** Does not fit: not started. */
  | { kind: "refused"; message: string; neededBytes: number; leftBytes: number; budgetBytes: number }
  /** Does not fit, started by force: `message` says what it needs over the budget. */
  | { kind: "forced"; message: string; neededBytes: number; leftBytes: number; budgetBytes: number }
  /** No estimate or no budget: started without a check; `note` says why. */
  | { kind: "unchecked"; note: string };

export interface Plan {
  /** One verdict per candidate, in the candidates' order. */
  verdicts: { modelId: string; name: string; verdict: Verdict }[];
  /** Bytes charged by what runs now (models with an estimate). */
  usedBytes: number;
  /** Running models without an estimate: not charged (the refusal names them). */
  uncounted: string[];
}

/** The unit a message uses: GiB on hosts with a budget of 4 GiB or more, else MiB (tests' tiny budgets). */
function unitFor(budgetBytes: number): { size: number; name: string } {
  return budgetBytes >= 4 * GiB ? { size: GiB, name: "GiB" } : { size: MiB, name: "MiB" };
}

const fixed = (bytes: number, unit: { size: number }) => (bytes / unit.size).toFixed(1);

/** "21.4 GiB (weights 18.6, KV cache 2.5, compute 0.3)": what is charged (chargedBytes), by part. */
export function describeNeed(e: MemoryEstimate, unit: { size: number; name: string }): string {
  const parts = [`weights ${fixed(e.weightsBytes, unit)}`, `KV cache ${fixed(e.kvCacheBytes, unit)}`, `compute ${fixed(e.computeBytes, unit)}`];
  return `${fixed(chargedBytes(e), unit)} ${unit.name} (${parts.join(", ")})`;
}

/** Which running models to stop so that `shortBytes` more are free: the smallest one that is enough, else the largest first. */
export function modelsToStop(running: readonly RunningModel[], shortBytes: number): RunningModel[] | null {
  const sized = running.filter((r) => hasEstimate(r.estimate)) as (RunningModel & { estimate: MemoryEstimate })[];
  const enough = sized.filter((r) => chargedBytes(r.estimate) >= shortBytes).sort((a, b) => chargedBytes(a.estimate) - chargedBytes(b.estimate));
  if (enough[0]) return [enough[0]];
  const chosen: RunningModel[] = [];
  let freed = 0;
  for (const r of [...sized].sort((a, b) => chargedBytes(b.estimate) - chargedBytes(a.estimate))) {
    chosen.push(r);
    freed += chargedBytes(r.estimate);
    if (freed >= shortBytes) return chosen;
  }
  return null;
}

/** The contexts the advice may suggest, largest first: powers of two from 512 up, below the current one. */
function smallerContexts(c: Candidate): number[] {
  const out: number[] = [];
  for (let ctx = 512; ctx < c.ctxSize; ctx *= 2) out.unshift(ctx);
  return out;
}

/** Its charge at `ctx`; null when no estimate can be made there. */
function chargeAt(c: Candidate, ctx: number): number | null {
  const e = c.atContext?.(ctx);
  return e && hasEstimate(e) ? chargedBytes(e) : null;
}

/** The largest context (a power of two from 512 up, below the current one) at which it fits in `leftBytes`; null when none does. */
export function contextThatFits(c: Candidate, leftBytes: number): number | null {
  if (!c.atContext) return null;
  for (const ctx of smallerContexts(c)) {
    const bytes = chargeAt(c, ctx);
    if (bytes !== null && bytes <= leftBytes) return ctx;
  }
  return null;
}

/**
 * The models to stop and the context to lower it to when neither alone is enough: the fewest models
 * (stopping them costs other people their servers; the context is this model's own setting), then the
 * largest context that fits once they are stopped. Null when no lower context fits even an empty host.
 */
export function stopAndContext(c: Candidate, running: readonly RunningModel[], leftBytes: number): { stop: RunningModel[]; ctxSize: number } | null {
  if (!c.atContext) return null;
  let best: { stop: RunningModel[]; ctxSize: number } | null = null;
  for (const ctx of smallerContexts(c)) {
    const bytes = chargeAt(c, ctx);
    if (bytes === null) continue;
    const stop = modelsToStop(running, bytes - leftBytes);
    if (stop && stop.length > 0 && (!best || stop.length < best.stop.length)) best = { stop, ctxSize: ctx };
  }
  return best;
}

/** The smallest context the advice looks at, and whether the model fits an empty host there; null: no smaller context to look at. */
function smallestContextFits(c: Candidate, budgetBytes: number): { ctxSize: number; fits: boolean } | null {
  const all = smallerContexts(c);
  const smallest = all[all.length - 1];
  if (smallest === undefined || !c.atContext) return null;
  const bytes = chargeAt(c, smallest);
  return { ctxSize: smallest, fits: bytes !== null && bytes <= budgetBytes };
}

/**
 * The ways to make it fit, in order: stop running models (at its context); lower its context alone; both
 * (only when neither alone is enough). "Larger than the whole budget" only when even the smallest context
 * looked at does not fit an empty host.
 */
function refusal(input: PlanInput, c: Candidate, e: MemoryEstimate, leftBytes: number, running: readonly RunningModel[]): string {
  const uncounted = running.filter((r) => !hasEstimate(r.estimate)).map((r) => r.name);
  const budget = input.budgetBytes!;
  const unit = unitFor(budget);
  const head = `${c.name} needs ${describeNeed(e, unit)}; ${input.host} has ${fixed(Math.max(0, leftBytes), unit)} of ${fixed(budget, unit)} ${unit.name} left`;
  const names = (stop: RunningModel[]) => stop.map((r) => `${r.name} (${fixed(chargedBytes(r.estimate as MemoryEstimate), unit)} ${unit.name})`).join(" and ");
  const ways: string[] = [];
  if (chargedBytes(e) <= budget) {
    const stop = modelsToStop(running, chargedBytes(e) - leftBytes);
    if (stop) ways.push(`stop ${names(stop)}`);
  }
  const ctx = contextThatFits(c, leftBytes);
  if (ctx !== null) ways.push(`lower its context to ${ctx}`);
  if (ways.length === 0) {
    const both = stopAndContext(c, running, leftBytes);
    if (both) ways.push(`stop ${names(both.stop)} and lower its context to ${both.ctxSize}`);
  }
  if (ways.length === 0) {
    const smallest = smallestContextFits(c, budget);
    const whole = `give ${input.host} a larger memory budget or use a smaller quantization`;
    if (chargedBytes(e) <= budget || smallest?.fits) ways.push(`give ${input.host} a larger memory budget`);
    else ways.push(smallest ? `even at context ${smallest.ctxSize} it is larger than the whole budget: ${whole}` : `it is larger than the whole budget: ${whole}`);
  }
  const note = uncounted.length > 0 ? ` (not counting ${uncounted.join(", ")}, which ${uncounted.length === 1 ? "has" : "have"} no estimate)` : "";
  return `${head}${note}; ${ways.join(" or ")}`;
}

/** The verdict of each candidate, in order. */
export function planStarts(input: PlanInput): Plan {
  const uncounted = input.running.filter((r) => !hasEstimate(r.estimate)).map((r) => r.name);
  let usedBytes = input.running.reduce((s, r) => s + (hasEstimate(r.estimate) ? chargedBytes(r.estimate) : 0), 0);
  const startUsed = usedBytes;
  const running: RunningModel[] = [...input.running];
  const verdicts: Plan["verdicts"] = [];
  for (const c of input.candidates) {
    const e = c.estimate;
    let verdict: Verdict;
    if (input.budgetBytes === null) verdict = { kind: "unchecked", note: `started without a memory check: ${input.budgetWhy ?? `the memory budget of ${input.host} is not known`}` };
    else if (!hasEstimate(e)) verdict = { kind: "unchecked", note: `started without a memory check: ${e.unavailable}` };
    else {
      const left = input.budgetBytes - usedBytes;
      if (chargedBytes(e) <= left) verdict = { kind: "fits", neededBytes: chargedBytes(e), leftBytes: left - chargedBytes(e), budgetBytes: input.budgetBytes };
      else {
        const message = refusal(input, c, e, left, running);
        verdict = input.force ? { kind: "forced", message, neededBytes: chargedBytes(e), leftBytes: left, budgetBytes: input.budgetBytes } : { kind: "refused", message, neededBytes: chargedBytes(e), leftBytes: left, budgetBytes: input.budgetBytes };
      }
    }
    if (verdict.kind !== "refused") {
      running.push({ modelId: c.modelId, name: c.name, estimate: e });
      if (hasEstimate(e)) usedBytes += chargedBytes(e);
    }
    verdicts.push({ modelId: c.modelId, name: c.name, verdict });
  }
  return { verdicts, usedBytes: startUsed, uncounted };
}
