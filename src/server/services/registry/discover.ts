/**
 * Turns what a host's agent found (`discover`: .gguf files under its model
 * roots, with GGUF metadata) into registry models: new files are added
 * disabled, each with a free port and a unique name; files the host already
 * has are listed as registered, with whether they are enabled (nothing is
 * added for them), so the caller can enable one by its id.
 *
 * Split sets: a current agent reports a complete set once (`splitCount`) and
 * an incomplete one as an error; with an older agent, which lists every part,
 * the same checks are made here from the file names. Two revisions of one
 * Hugging Face cache repository: the one `refs/main` names gets the plain
 * name, the other is labelled with its commit.
 */
import { ggufInfoSchema, type GgufInfo } from "synapse-host-agent/protocol";
import { describeMissing, missingParts, parseSplitName, splitPartPath } from "synapse-host-agent/split-name";
import { z } from "zod";
import type { Db } from "~/server/db/client";
import { ServiceError } from "../errors";
import { parseInput } from "./input";
import { formatPortRange, tunnelRange, type PortRange } from "./model-ports";
import { assertNameAndPortFree, type RegistryDeps } from "./models";
import { toRegistryPath } from "./paths";
import { writeTransaction } from "./tx";

export interface DiscoveryReport {
  /** New files, added disabled. `note`: what the name alone does not say (a split set, a revision other than main's). */
  added: { id: string; name: string; filePath: string; port: number; note?: string }[];
  /** Found files the host already has as a model (one entry per model, none added): enable one with `models.setEnabled` by its `id`. */
  registered: { id: string; name: string; filePath: string; port: number; enabled: boolean; note?: string }[];
  skipped: { path: string; reason: string }[];
  errors: { path: string; message: string }[];
}

const MAX_NAME = 64;
/** `models--<org>--<name>`: the Hugging Face hub cache's folder for one repository. */
const HF_REPO_DIR = /^models--([^/]+?)--(.+)$/;
/** The cache repository folder and snapshot commit of a path in the Hugging Face layout. */
const HF_SNAPSHOT = /^(.*[\\/]models--[^\\/]+)[\\/]snapshots[\\/]([^\\/]+)[\\/]/;

function sanitize(candidate: string): string {
  const s = candidate
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^[^A-Za-z0-9]+/, "")
    .slice(0, MAX_NAME)
    .replace(/[-._]+$/, "");
  return s || "model";
}

const squash = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");

/**
 * Names for a model file, best first. In the Hugging Face layout the file's
 * stem usually repeats the repository's name ("Qwen3-8B-GGUF" holds
 * "Qwen3-8B-Q4_K_M.gguf"): then the stem alone; otherwise repository and
 * stem. The organisation is added only to tell two models apart.
 */
export function nameCandidates(filePath: string): string[] {
  const parts = filePath.split(/[\\/]/).filter(Boolean);
  const file = parts.at(-1) ?? "model.gguf";
  const stem = file.replace(/\.gguf$/i, "").replace(/-00001-of-\d{5}$/i, "");
  const snapshots = parts.lastIndexOf("snapshots");
  const repoMatch = snapshots >= 1 ? HF_REPO_DIR.exec(parts[snapshots - 1] ?? "") : null;
  const out: string[] = [];
  if (repoMatch) {
    const org = repoMatch[1] ?? "";
    const repo = (repoMatch[2] ?? "").replace(/[-_.]?gguf$/i, "") || (repoMatch[2] ?? "");
    const primary = squash(stem).includes(squash(repo)) ? stem : `${repo}-${stem}`;
    out.push(primary, `${org}-${primary}`);
  } else {
    out.push(stem);
    const parent = parts.at(-2);
    if (parent) out.push(`${parent}-${stem}`);
  }
  return [...new Set(out.map(sanitize))];
}

export function uniqueName(candidates: string[], taken: ReadonlySet<string>): string {
  for (const c of candidates) if (!taken.has(c)) return c;
  const base = candidates[0] ?? "model";
  for (let i = 2; i < 100_000; i++) {
    const suffix = `-${i}`;
    const name = `${base.slice(0, MAX_NAME - suffix.length)}${suffix}`;
    if (!taken.has(name)) return name;
  }
  throw new ServiceError("INTERNAL", `no free name for ${base}`);
}

/** What each readable file needs beyond its info: a label and a note for the name, or why it is not added. */
interface Plan {
  info: GgufInfo;
  /** Appended to the name (a revision other than main's). */
  label: string | null;
  notes: string[];
  /** Set when the file is not added: skipped (with a reason) or an error. */
  skip: { reason: string } | null;
  error: string | null;
}

/**
 * Split sets from an agent that lists every part (older than `splitCount`):
 * later parts are skipped when their first part is here, a set with parts
 * missing is an error naming them, a complete set's size covers every part.
 */
function planSplitParts(plans: Plan[]): void {
  const sets = new Map<string, Plan[]>();
  for (const p of plans) {
    if (p.info.splitCount !== undefined) continue;
    const split = parseSplitName(p.info.path);
    if (!split) continue;
    const key = `${split.prefix}\0${split.count}`;
    sets.set(key, [...(sets.get(key) ?? []), p]);
  }
  for (const members of sets.values()) {
    const { prefix, count } = parseSplitName(members[0]!.info.path)!;
    const byIndex = new Map(members.map((m) => [parseSplitName(m.info.path)!.index, m]));
    const missing = missingParts(prefix, count, new Set(byIndex.keys()));
    const first = byIndex.get(1);
    for (const [index, m] of byIndex) {
      if (missing.length > 0) {
        m.error = first
          ? index === 1 ? `incomplete split set: ${describeMissing(missing)} of ${count} missing; llama-server needs every part to load it` : `part ${index} of ${count} of an incomplete split set (see its first part)`
          : `part ${index} of a split set of ${count} whose first part is missing: ${describeMissing(missing)}`;
      } else if (index !== 1) {
        m.skip = { reason: `part ${index} of ${count} of a split model; its first part is the one served` };
      }
    }
    if (first && missing.length === 0) {
      first.info = { ...first.info, sizeBytes: members.reduce((sum, m) => sum + m.info.sizeBytes, 0) };
      first.notes.push(`split set of ${count} parts`);
    }
  }
}

/**
 * Two or more revisions of one cache repository: the one `refs/main` names
 * keeps the plain name, every other is labelled `rev-<commit>`. Returns the
 * plans with main's revisions first, so they take the plain names.
 */
function planRevisions(plans: Plan[]): Plan[] {
  const repos = new Map<string, Set<string>>();
  const snap = (p: Plan) => HF_SNAPSHOT.exec(p.info.path);
  for (const p of plans) {
    const m = snap(p);
    if (m) repos.set(m[1]!, (repos.get(m[1]!) ?? new Set()).add(m[2]!));
  }
  for (const p of plans) {
    const m = snap(p);
    if (!m || (repos.get(m[1]!)?.size ?? 0) < 2) continue;
    if (p.info.revision?.refs.includes("main")) {
      p.notes.push("the revision refs/main names");
      continue;
    }
    const commit = m[2]!.slice(0, 7);
    p.label = `rev-${commit}`;
    const refs = p.info.revision?.refs ?? [];
    p.notes.push(`revision ${commit}, not the one refs/main names${refs.length ? ` (named by ${refs.join(", ")})` : ""}`);
  }
  const isMain = (p: Plan) => (p.info.revision?.refs.includes("main") ? 0 : 1);
  return [...plans].sort((a, b) => isMain(a) - isMain(b));
}

/**
 * Adds the discovered files that the host does not have yet. `infos` are the
 * agent's `discover` result (host paths); they are stored as registry paths.
 */
export async function addDiscoveredModels(db: Db, hostId: string, infos: GgufInfo[], deps: RegistryDeps): Promise<DiscoveryReport> {
  const files = parseInput(z.array(ggufInfoSchema).max(10_000, "at most 10000 files per discovery"), infos);
  return writeTransaction(db, async (tx) => {
    const host = await tx.host.findUnique({ where: { id: hostId }, select: { id: true, name: true, registryModelsRoot: true, hostModelsRoot: true, linkKind: true, upstreamMode: true, modelPorts: true } });
    if (!host) throw ServiceError.invalid([{ path: "hostId", message: `no host with id ${hostId}` }]);
    const existing = await tx.model.findMany({ where: { hostId }, select: { id: true, filePath: true, name: true, port: true, enabled: true, shape: true } });
    // A file may back several models (its own name, port and settings each).
    const registered = new Map<string, (typeof existing)[number][]>();
    for (const m of existing) registered.set(m.filePath, [...(registered.get(m.filePath) ?? []), m]);
    const names = new Set((await tx.model.findMany({ select: { name: true } })).map((m) => m.name));
    const report: DiscoveryReport = { added: [], registered: [], skipped: [], errors: [] };
    // Models already reported by this scan: a file listed twice is reported once.
    const seen = new Set<string>();
    const usedPorts = new Set((await tx.model.findMany({ where: { hostId }, select: { port: true } })).map((m) => m.port));
    usedPorts.add(deps.appPort);

    const readable: Plan[] = [];
    for (const info of files) {
      if (info.error !== null) report.errors.push({ path: info.path, message: info.error });
      else readable.push({ info, label: null, notes: [], skip: null, error: null });
    }
    planSplitParts(readable);
    const plans = planRevisions(readable);
    // A set the agent reported whole: its later parts are named here, as an older agent listed them.
    const laterParts: { path: string; reason: string }[] = [];

    for (const plan of plans) {
      const info = plan.info;
      if (plan.error !== null) {
        report.errors.push({ path: info.path, message: plan.error });
        continue;
      }
      if (plan.skip) {
        report.skipped.push({ path: info.path, reason: plan.skip.reason });
        continue;
      }
      if (info.splitCount !== undefined) {
        plan.notes.push(`split set of ${info.splitCount} parts`);
        const split = parseSplitName(info.path);
        if (split) for (let i = 2; i <= info.splitCount; i++) laterParts.push({ path: splitPartPath(split.prefix, i, info.splitCount), reason: `part ${i} of ${info.splitCount} of a split model; its first part is the one served` });
      }
      let filePath: string;
      try {
        filePath = toRegistryPath(host, info.path, "path");
      } catch (err) {
        report.errors.push({ path: info.path, message: (err as Error).message });
        continue;
      }
      const known = registered.get(filePath);
      if (known !== undefined) {
        const fresh = known.filter((m) => !seen.has(m.id));
        if (fresh.length === 0) {
          report.skipped.push({ path: info.path, reason: `listed twice; already registered as ${known.map((m) => m.name).join(", ")}` });
          continue;
        }
        // Discovery again keeps the registered model's shape current (an estimate's advice when it has none).
        const shape = info.shape ? JSON.stringify(info.shape) : null;
        if (shape !== null && fresh.some((m) => m.shape !== shape)) await tx.model.updateMany({ where: { hostId, filePath }, data: { shape } });
        for (const m of fresh) {
          seen.add(m.id);
          const entry = { id: m.id, name: m.name, filePath: m.filePath, port: m.port, enabled: m.enabled };
          report.registered.push(plan.notes.length ? { ...entry, note: plan.notes.join("; ") } : entry);
        }
        continue;
      }
      const candidates = nameCandidates(info.path).map((c) => (plan.label ? labelled(c, plan.label) : c));
      const name = uniqueName(candidates, names);
      // A host whose key allows only its model ports: the free ports in that range.
      const range = tunnelRange(host);
      let port = lowestFree(usedPorts, range ?? undefined);
      // On this machine a port another program holds (a web server on 8080) would fail the model's first start.
      const held: number[] = [];
      while (port !== null && host.linkKind === "local" && deps.localPortHeld && held.length < MAX_HELD_PROBES && (await deps.localPortHeld(port))) {
        held.push(port);
        usedPorts.add(port);
        port = lowestFree(usedPorts, range ?? undefined);
      }
      if (held.length > 0 && port !== null) plan.notes.push(`port${held.length > 1 ? "s" : ""} ${held.join(", ")} in use by another program on this machine`);
      if (port === null) {
        report.errors.push({ path: info.path, message: range ? `host ${host.name} has no free port left in its model ports ${formatPortRange(range)}; widen the range (scripts/setup-ssh.sh --model-ports, then the host here)` : `host ${host.name} has no free port left from 8080 to 65535` });
        continue;
      }
      await assertNameAndPortFree(tx, { name, hostId, port }, deps);
      const row = await tx.model.create({
        data: {
          name,
          hostId,
          filePath,
          port,
          enabled: false,
          source: "discovered",
          architecture: info.architecture,
          parameterCount: info.parameterCount,
          quantization: info.quantization,
          contextLength: info.contextLength,
          sizeBytes: info.sizeBytes,
          shape: info.shape ? JSON.stringify(info.shape) : null,
          server: { create: { desired: "stopped" } },
        },
        select: { id: true, name: true, filePath: true, port: true },
      });
      names.add(name);
      registered.set(filePath, [{ ...row, enabled: false, shape: info.shape ? JSON.stringify(info.shape) : null }]);
      seen.add(row.id);
      usedPorts.add(port);
      report.added.push(plan.notes.length ? { ...row, note: plan.notes.join("; ") } : row);
    }
    report.skipped.push(...laterParts);
    const byPath = (a: { filePath: string; name: string }, b: { filePath: string; name: string }) => (a.filePath < b.filePath ? -1 : a.filePath > b.filePath ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    report.added.sort(byPath);
    report.registered.sort(byPath);
    return report;
  });
}

/** A name candidate with a label, kept within the name limit (the label survives). */
function labelled(candidate: string, label: string): string {
  return sanitize(`${candidate.slice(0, MAX_NAME - label.length - 1)}-${label}`);
}

/** Ports found held by other programs that discovery steps over for one model before it takes the next one anyway. */
const MAX_HELD_PROBES = 64;

/** Lowest free port from 8080 up (or in `range`): gaps left by deleted models are reused. */
function lowestFree(used: ReadonlySet<number>, range: PortRange = { from: 8080, to: 65535 }): number | null {
  for (let p = range.from; p <= range.to; p++) if (!used.has(p)) return p;
  return null;
}
