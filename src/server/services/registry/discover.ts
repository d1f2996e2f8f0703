/**
 * Turns what a host's agent found (`discover`: .gguf files under its model
 * roots, with GGUF metadata) into registry models: new files are added
 * disabled, each with a free port and a unique name; known files are skipped.
 */
import { ggufInfoSchema, type GgufInfo } from "synapse-host-agent/protocol";
import { z } from "zod";
import type { Db } from "~/server/db/client";
import { ServiceError } from "../errors";
import { parseInput } from "./input";
import { assertNameAndPortFree, type RegistryDeps } from "./models";
import { toRegistryPath } from "./paths";
import { writeTransaction } from "./tx";

export interface DiscoveryReport {
  added: { id: string; name: string; filePath: string; port: number }[];
  skipped: { path: string; reason: string }[];
  errors: { path: string; message: string }[];
}

const MAX_NAME = 64;
/** `models--<org>--<name>`: the Hugging Face hub cache's folder for one repository. */
const HF_REPO_DIR = /^models--([^/]+?)--(.+)$/;
/** llama.cpp's split files: `<name>-00002-of-00003.gguf`. Only the first part is served. */
const SPLIT_PART = /-(\d{5})-of-(\d{5})\.gguf$/i;

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

/**
 * Adds the discovered files that the host does not have yet. `infos` are the
 * agent's `discover` result (host paths); they are stored as registry paths.
 */
export async function addDiscoveredModels(db: Db, hostId: string, infos: GgufInfo[], deps: RegistryDeps): Promise<DiscoveryReport> {
  const files = parseInput(z.array(ggufInfoSchema).max(10_000, "at most 10000 files per discovery"), infos);
  return writeTransaction(db, async (tx) => {
    const host = await tx.host.findUnique({ where: { id: hostId }, select: { id: true, name: true, registryModelsRoot: true, hostModelsRoot: true } });
    if (!host) throw ServiceError.invalid([{ path: "hostId", message: `no host with id ${hostId}` }]);
    const existing = await tx.model.findMany({ where: { hostId }, select: { filePath: true, name: true } });
    const registered = new Map(existing.map((m) => [m.filePath, m.name]));
    const names = new Set((await tx.model.findMany({ select: { name: true } })).map((m) => m.name));
    const report: DiscoveryReport = { added: [], skipped: [], errors: [] };
    const usedPorts = new Set((await tx.model.findMany({ where: { hostId }, select: { port: true } })).map((m) => m.port));
    usedPorts.add(deps.appPort);

    for (const info of files) {
      if (info.error !== null) {
        report.errors.push({ path: info.path, message: info.error });
        continue;
      }
      const split = SPLIT_PART.exec(info.path);
      if (split && split[1] !== "00001") {
        report.skipped.push({ path: info.path, reason: `part ${Number(split[1])} of ${Number(split[2])} of a split model; its first part is the one served` });
        continue;
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
        report.skipped.push({ path: info.path, reason: `already registered as ${known}` });
        continue;
      }
      const name = uniqueName(nameCandidates(info.path), names);
      const port = lowestFree(usedPorts);
      if (port === null) {
        report.errors.push({ path: info.path, message: `host ${host.name} has no free port left from 8080 to 65535` });
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
          server: { create: { desired: "stopped" } },
        },
        select: { id: true, name: true, filePath: true, port: true },
      });
      names.add(name);
      registered.set(filePath, name);
      usedPorts.add(port);
      report.added.push(row);
    }
    return report;
  });
}

/** Lowest free port from 8080 up: gaps left by deleted models are reused. */
function lowestFree(used: ReadonlySet<number>): number | null {
  for (let p = 8080; p <= 65535; p++) if (!used.has(p)) return p;
  return null;
}
