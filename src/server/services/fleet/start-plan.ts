/**
 * Plans before spawns: before any start on a host (inside its queue, so two starts cannot both take the
 * same room), what runs there now and each model to start are weighed against the host's budget
 * (memory/plan.ts), and for an on-demand start that does not fit, idle on-demand models are chosen to
 * make room (memory/eviction.ts). This file gathers the facts: the host's rows and entries, the budget,
 * the estimates.
 */
import type { HostLink } from "synapse-host-agent/link";
import type { Host, Model } from "~/generated/prisma/client";
import { getSettings, type SettingsView } from "~/server/services/registry/settings";
import { chooseEvictions, mayFitLater, type EvictionCandidate, type HeldMemory } from "../memory/eviction";
import { effectiveContext, type ModelEstimator } from "../memory/model-estimator";
import type { MemoryEstimate } from "../memory/estimate-types";
import { chargedBytes, hasEstimate, planStarts, type Estimate, type Verdict } from "../memory/plan";
import type { FleetContext } from "./context";
import type { HostMemoryStore } from "./host-memory";
import type { ModelRow } from "./server-table";
import type { ServerResult } from "./server-entry";

export interface StartPlanOptions {
  /** Start what does not fit too (the event log says so). */
  force?: boolean;
  /** An on-demand start: stop idle on-demand models (least recently used first) to make room. */
  evict?: boolean;
  /**
   * The registry as the caller read it with the rows to start (start-all: one read for both): every model
   * (of any host) and the global defaults. Without it the plan reads them. Read again all the same when a
   * model of the host that is not among them runs or is starting (created since, and started).
   */
  registry?: { models: readonly ModelRow[]; settings: SettingsView };
  /** Called for each admitted row as its start is sent (operations.ts Prepared.beside); not for refused ones. */
  beside?: (row: ModelRow) => void;
  /** Called for each admitted row whose start the agent answered ready, before that is recorded (operations.ts Prepared.onReady). */
  onReady?: (row: ModelRow, result: ServerResult) => void;
}

export interface HostPlan {
  /** To start, each with its verdict (fits, forced, unchecked, or null when it already runs). */
  admitted: { row: ModelRow; verdict: Verdict | null }[];
  /**
   * Not started, each with whether it could fit later without anyone acting (memory/eviction.ts
   * mayFitLater): false when the models that stay (`always` ones running, and those this plan admits) leave
   * no room for it, whatever on-demand models unload and whatever stops or starts under way end.
   */
  refused: { row: ModelRow; verdict: Verdict & { kind: "refused" }; mayFitLater: boolean }[];
  /** To stop first (cause `evicted`). */
  evict: ModelRow[];
  /** The global defaults the plan was made with (read once for the plan and the starts that follow it). */
  settings: SettingsView;
}

export interface StartPlanner {
  /** The plan of `rows` (all on `host`, in start order). Call inside the host's queue. */
  planHost(host: Host, link: HostLink | null, rows: readonly ModelRow[], options: StartPlanOptions): Promise<HostPlan>;
  /** The host's memory as the dashboard's bar draws it: what runs, what START ALL ENABLED would add, what it would refuse. */
  overview(host: Host): Promise<HostMemoryOverview>;
  /** The estimate of a model row (saved, or unsaved form values over it) under the global defaults. */
  estimate(model: Model): Promise<Estimate>;
}

/** One model's part of a host's memory bar. Bytes. */
export interface MemorySegment {
  modelId: string;
  name: string;
  /** running: holds memory now; start-all: START ALL ENABLED would start it. */
  kind: "running" | "start-all";
  /** What the plan charges (weights, KV cache, compute: memory/plan.ts chargedBytes); null: no estimate (`note` says why). */
  bytes: number | null;
  estimate: MemoryEstimate | null;
  note: string | null;
}

export interface HostMemoryOverview {
  hostId: string;
  host: string;
  /** Null: unknown (`basis` says why); nothing is checked. */
  budgetBytes: number | null;
  basis: string;
  usedBytes: number;
  /** What START ALL ENABLED would add (the models it would start). */
  startAllBytes: number;
  segments: MemorySegment[];
  /** What START ALL ENABLED would refuse, with the numbers. */
  refused: { modelId: string; name: string; message: string }[];
}

export function createStartPlanner(ctx: FleetContext, memory: HostMemoryStore, estimate: ModelEstimator): StartPlanner {
  const { db, table } = ctx;

  /** Alive (or a start in flight): it holds memory, or is about to. */
  function holdsMemory(r: ModelRow): boolean {
    const e = table.get(r.id);
    if (e?.op?.kind === "start") return true;
    return e ? e.alive : ["starting", "ready", "unhealthy", "stopping"].includes(r.server?.observed ?? "stopped");
  }

  /** It may stop without a person asking (eviction.ts HeldMemory): on demand, or a start or stop of it under way. */
  function mayGo(r: ModelRow): boolean {
    if (r.loadPolicy === "on-demand") return true;
    const e = table.get(r.id);
    if (e?.op) return true;
    const state = e ? e.state : (r.server?.observed ?? "stopped");
    return state === "starting" || state === "stopping";
  }

  /** The host's rows among `models`, or null when a model of the host runs (or is starting) that is not among them. */
  function knownRows(host: Host, models: readonly ModelRow[]): ModelRow[] | null {
    const mine = models.filter((m) => m.hostId === host.id);
    const ids = new Set(mine.map((m) => m.id));
    for (const e of table.entries()) if (e.hostId === host.id && !ids.has(e.modelId) && (e.alive || e.op?.kind === "start")) return null;
    return mine;
  }

  return {
    async planHost(host, link, rows, options) {
      const known = options.registry && knownRows(host, options.registry.models);
      const [settings, budget, all] = await Promise.all([
        known ? options.registry!.settings : getSettings(db),
        memory.budget(host, link),
        known ?? db.model.findMany({ where: { hostId: host.id }, include: { host: true, server: true }, orderBy: { name: "asc" } }),
      ]);
      const runningRows = all.filter(holdsMemory);
      const runningIds = new Set(runningRows.map((r) => r.id));
      const already = rows.filter((r) => runningIds.has(r.id));
      const toStart = rows.filter((r) => !runningIds.has(r.id));
      const running: EvictionCandidate[] = runningRows.map((r) => {
        const e = table.get(r.id);
        return { modelId: r.id, name: r.name, estimate: estimate(r, settings), loadPolicy: r.loadPolicy, inFlight: e?.inFlight ?? 0, lastUsedAt: e?.lastUsedAt ?? null };
      });
      const candidates = toStart.map((r) => ({ modelId: r.id, name: r.name, estimate: estimate(r, settings), ctxSize: effectiveContext(r, settings), atContext: (ctxSize: number) => estimate({ ...r, ctxSize }, settings) }));
      const budgetBytes = budget.budgetBytes;
      let plan = planStarts({ host: host.name, budgetBytes, budgetWhy: budget.budgetBytes === null ? budget.why : undefined, running, candidates, force: options.force });
      let evict: ModelRow[] = [];
      if (options.evict && budgetBytes !== null && plan.verdicts.some((v) => v.verdict.kind === "refused")) {
        // One at a time (the gateway starts one model per request): make room for the first refused.
        const first = plan.verdicts.find((v) => v.verdict.kind === "refused")!;
        const chosen = chooseEvictions(budgetBytes, running, candidates.find((c) => c.modelId === first.modelId)!.estimate);
        if (chosen && chosen.length > 0) {
          const gone = new Set(chosen.map((c) => c.modelId));
          evict = runningRows.filter((r) => gone.has(r.id));
          plan = planStarts({ host: host.name, budgetBytes, running: running.filter((r) => !gone.has(r.modelId)), candidates, force: options.force });
        }
      }
      const byId = new Map(toStart.map((r) => [r.id, r]));
      const admitted: HostPlan["admitted"] = already.map((row) => ({ row, verdict: null }));
      const refusedVerdicts: { row: ModelRow; verdict: Verdict & { kind: "refused" } }[] = [];
      for (const { modelId, verdict } of plan.verdicts) {
        const row = byId.get(modelId)!;
        if (verdict.kind === "refused") refusedVerdicts.push({ row, verdict });
        else admitted.push({ row, verdict });
      }
      // What holds memory once this plan's starts are made: what runs (each as it may go or stays) and what it admits.
      const estimateOf = new Map([...running, ...candidates].map((c) => [c.modelId, c.estimate]));
      const held: HeldMemory[] = [
        ...runningRows.filter((r) => !evict.includes(r)).map((r) => ({ modelId: r.id, name: r.name, estimate: estimateOf.get(r.id)!, mayGo: mayGo(r) })),
        ...admitted.filter((a) => a.verdict !== null).map((a) => ({ modelId: a.row.id, name: a.row.name, estimate: estimateOf.get(a.row.id)!, mayGo: a.row.loadPolicy === "on-demand" })),
      ];
      const refused: HostPlan["refused"] = refusedVerdicts.map((r) => ({ ...r, mayFitLater: mayFitLater(r.verdict.budgetBytes, held, estimateOf.get(r.row.id)!) }));
      // Start order is the caller's (priority, then the registry's order).
      const order = new Map(rows.map((r, i) => [r.id, i]));
      admitted.sort((a, b) => order.get(a.row.id)! - order.get(b.row.id)!);
      return { admitted, refused, evict, settings };
    },

    async overview(host) {
      const [settings, budget, all] = await Promise.all([getSettings(db), memory.budget(host, null), db.model.findMany({ where: { hostId: host.id }, include: { host: true, server: true }, orderBy: { name: "asc" } })]);
      const runningRows = all.filter(holdsMemory);
      const wouldStart = all.filter((r) => r.enabled && r.loadPolicy === "always" && !holdsMemory(r)).sort((a, b) => (b.startPriority ?? 0) - (a.startPriority ?? 0));
      const running = runningRows.map((r) => ({ modelId: r.id, name: r.name, estimate: estimate(r, settings) }));
      const candidates = wouldStart.map((r) => ({ modelId: r.id, name: r.name, estimate: estimate(r, settings), ctxSize: effectiveContext(r, settings), atContext: (ctxSize: number) => estimate({ ...r, ctxSize }, settings) }));
      const plan = planStarts({ host: host.name, budgetBytes: budget.budgetBytes, budgetWhy: budget.budgetBytes === null ? budget.why : undefined, running, candidates });
      const segment = (m: { modelId: string; name: string; estimate: Estimate }, kind: MemorySegment["kind"], note: string | null = null): MemorySegment => {
        const e = hasEstimate(m.estimate) ? m.estimate : null;
        return { modelId: m.modelId, name: m.name, kind, bytes: e ? chargedBytes(e) : null, estimate: e, note: e ? note : (m.estimate as { unavailable: string }).unavailable };
      };
      const segments = running.map((m) => segment(m, "running"));
      const refused: HostMemoryOverview["refused"] = [];
      let startAllBytes = 0;
      for (const v of plan.verdicts) {
        const c = candidates.find((x) => x.modelId === v.modelId)!;
        if (v.verdict.kind === "refused") refused.push({ modelId: c.modelId, name: c.name, message: v.verdict.message });
        else {
          segments.push(segment(c, "start-all"));
          if (hasEstimate(c.estimate)) startAllBytes += chargedBytes(c.estimate);
        }
      }
      return {
        hostId: host.id,
        host: host.name,
        budgetBytes: budget.budgetBytes,
        basis: budget.budgetBytes === null ? budget.why : budget.basis,
        usedBytes: plan.usedBytes,
        startAllBytes,
        segments,
        refused,
      };
    },

    async estimate(model) {
      return estimate(model, await getSettings(db));
    },
  };
}
