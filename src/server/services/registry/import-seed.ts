/**
 * Import of the seed project's two files, exactly as it writes them:
 *
 *   backend/data/model_registry.json
 *     {"models": {"<model_id>": {file_path, filename, port, enabled, n_gpu_layers,
 *      ctx_size, n_threads, batch_size, family, quantization, size_params, ...}}, ...}
 *     (pydantic model_dump: every field present, nulls meaning "use the global default")
 *   backend/data/runtime_settings.json
 *     {n_gpu_layers, ctx_size, threads, batch_size, ubatch_size, flash_attn, no_mmap, ..., "_metadata": {...}}
 *
 * Keys this app has no use for (tiers, embeddings, CGRAG) are ignored. Each
 * model entry is checked on its own: bad ones are reported with the seed's own
 * key names, the rest are imported. Importing the same files again writes
 * nothing. Given as text, a file may start with a byte-order mark, and a
 * model id or field given twice (which JSON.parse would quietly reduce to the
 * last) is reported instead of imported.
 */
import { portSchema, serverIdSchema } from "synapse-host-agent/protocol";
import { z } from "zod";
import type { Prisma } from "~/generated/prisma/client";
import type { Db } from "~/server/db/client";
import { issuesFromZod, ServiceError, type FieldIssue } from "../errors";
import type { RegistryDeps } from "./models";
import { describeLines, duplicateKeys, stripBom, type DuplicateKey } from "./json-text";
import { toHostPath } from "./paths";
import { gatewayBounds, LOAD_POLICIES, runtimeBounds } from "./schemas";
import { applySettingsPatch, settingsIn } from "./settings";
import { writeTransaction, type Tx } from "./tx";

export interface ImportReport {
  created: string[];
  updated: string[];
  unchanged: string[];
  invalid: { modelId: string; issues: FieldIssue[] }[];
  /** "invalid": runtime_settings.json was given but not applied; see settingsIssues. */
  settings: "updated" | "unchanged" | "absent" | "invalid";
  settingsIssues: FieldIssue[];
}

export interface ImportFiles {
  /** model_registry.json, parsed or as text. */
  registry?: unknown;
  /** runtime_settings.json, parsed or as text. */
  runtimeSettings?: unknown;
}

const MAX_MODELS = 2000;

const seedPath = z
  .string({ error: "must be a path" })
  .min(1, "must not be empty")
  .max(1024, "must be at most 1024 characters")
  .refine((p) => p.startsWith("/"), "must be an absolute path (starting with /)")
  .refine((p) => !p.split(/[\\/]/).includes(".."), "must not contain '..' segments")
  .refine((p) => p.toLowerCase().endsWith(".gguf"), "must name a .gguf file");

/** One entry of model_registry.json's "models"; unknown keys are dropped. */
const seedModelSchema = z.object({
  file_path: seedPath,
  port: portSchema.nullish(),
  enabled: z.boolean({ error: "must be true or false" }).nullish(),
  n_gpu_layers: runtimeBounds.gpuLayers.nullish(),
  ctx_size: runtimeBounds.ctxSize.nullish(),
  n_threads: runtimeBounds.threads.nullish(),
  batch_size: runtimeBounds.batchSize.nullish(),
  ubatch_size: runtimeBounds.ubatchSize.nullish(),
  family: z.string({ error: "must be text" }).max(64, "must be at most 64 characters").nullish(),
  quantization: z.string({ error: "must be text" }).max(32, "must be at most 32 characters").nullish(),
  size_params: z.number({ error: "must be a number (billions of parameters)" }).min(0, "must not be negative").max(1_000_000, "must be at most 1000000 (billions)").nullish(),
  // Not in the seed's files; a registry written for the gateway may carry them (absent: unchanged).
  load_policy: z.enum(LOAD_POLICIES, { error: "must be always or on-demand" }).nullish(),
  idle_timeout_ms: runtimeBounds.idleTimeoutMs.nullish(),
  concurrency: gatewayBounds.concurrency.nullish(),
  queue_limit: gatewayBounds.queueLimit.nullish(),
});
type SeedModel = z.output<typeof seedModelSchema>;

const seedRegistrySchema = z.object({
  models: z.record(z.string(), z.unknown(), { error: 'must be an object of model_id → model, as model_registry.json has it ({"models": {...}})' }),
});

/** runtime_settings.json; unknown keys (embeddings, CGRAG, benchmark, _metadata) are dropped. */
const seedSettingsSchema = z.object(
  {
    n_gpu_layers: runtimeBounds.gpuLayers.optional(),
    ctx_size: runtimeBounds.ctxSize.optional(),
    threads: runtimeBounds.threads.optional(),
    batch_size: runtimeBounds.batchSize.optional(),
    ubatch_size: runtimeBounds.ubatchSize.optional(),
    flash_attn: z.boolean({ error: "must be true or false" }).optional(),
    no_mmap: z.boolean({ error: "must be true or false" }).optional(),
  },
  { error: "must be an object, as runtime_settings.json has it" },
);

interface ParsedFile {
  value: unknown;
  /** Keys given twice in one object (found in the text; empty when the file came already parsed). */
  duplicates: DuplicateKey[];
}

/** A file given as text: a byte-order mark dropped, JSON parsed, duplicate keys found. */
function parseText(value: unknown, field: string, file: string): ParsedFile {
  if (typeof value !== "string") return { value, duplicates: [] };
  const text = stripBom(value);
  try {
    return { value: JSON.parse(text), duplicates: duplicateKeys(text) };
  } catch (cause) {
    const message = `${file} is not valid JSON (${(cause as Error).message})`;
    throw new ServiceError("BAD_REQUEST", `${field}: ${message}`, { issues: [{ path: field, message }], cause });
  }
}

const KEPT_LAST = "JSON keeps only the last, so";

/**
 * model_registry.json's duplicate keys as problems: "models" twice refuses
 * the file; a model id twice makes every copy invalid (which one was meant
 * cannot be told); a field twice in one entry makes that entry invalid.
 */
function registryDuplicates(duplicates: DuplicateKey[]): Map<string, FieldIssue[]> {
  const byModel = new Map<string, FieldIssue[]>();
  // The id's own issue first: it is why the entry is refused whatever else is wrong.
  const add = (modelId: string, issue: FieldIssue) => byModel.set(modelId, issue.path === "model_id" ? [issue, ...(byModel.get(modelId) ?? [])] : [...(byModel.get(modelId) ?? []), issue]);
  for (const d of duplicates) {
    if (d.path.length === 0 && d.key === "models") {
      throw ServiceError.invalid([{ path: "registry.models", message: `"models" appears on ${describeLines(d.lines)} of model_registry.json; ${KEPT_LAST} the models before are lost: merge them into one "models"` }]);
    }
    if (d.path.length === 1 && d.path[0] === "models") {
      add(d.key, { path: "model_id", message: `${d.key} appears ${d.lines.length} times in model_registry.json (${describeLines(d.lines)}); ${KEPT_LAST} none of them is imported: keep one` });
    } else if (d.path.length >= 2 && d.path[0] === "models") {
      const field = [...d.path.slice(2), d.key].join(".");
      add(String(d.path[1]), { path: field, message: `appears on ${describeLines(d.lines)} of this entry; ${KEPT_LAST} keep one` });
    }
  }
  return byModel;
}

/** The columns an entry sets. Metadata the seed leaves null does not erase what discovery read. */
interface ImportedColumns {
  filePath: string;
  enabled: boolean;
  gpuLayers: number | null;
  ctxSize: number | null;
  threads: number | null;
  batchSize: number | null;
  ubatchSize?: number | null;
  family?: string;
  quantization?: string;
  parameterCount?: number;
  loadPolicy?: string;
  idleTimeoutMs?: number | null;
  concurrency?: number | null;
  queueLimit?: number | null;
}

function columnsOf(entry: SeedModel): ImportedColumns {
  return {
    filePath: entry.file_path,
    enabled: entry.enabled ?? false,
    gpuLayers: entry.n_gpu_layers ?? null,
    ctxSize: entry.ctx_size ?? null,
    threads: entry.n_threads ?? null,
    batchSize: entry.batch_size ?? null,
    ...(entry.ubatch_size !== undefined ? { ubatchSize: entry.ubatch_size } : {}),
    ...(entry.family != null ? { family: entry.family } : {}),
    ...(entry.quantization != null ? { quantization: entry.quantization.toUpperCase() } : {}),
    ...(entry.size_params != null ? { parameterCount: Math.round(entry.size_params * 1e9) } : {}),
    ...(entry.load_policy != null ? { loadPolicy: entry.load_policy } : {}),
    ...(entry.idle_timeout_ms !== undefined ? { idleTimeoutMs: entry.idle_timeout_ms } : {}),
    ...(entry.concurrency !== undefined ? { concurrency: entry.concurrency } : {}),
    ...(entry.queue_limit !== undefined ? { queueLimit: entry.queue_limit } : {}),
  };
}

interface Planned {
  modelId: string;
  columns: ImportedColumns;
  port: number | null;
  existing: { id: string; port: number; row: Record<string, unknown> } | null;
}

export async function importSeed(db: Db, files: ImportFiles, opts: RegistryDeps & { hostId: string }): Promise<ImportReport> {
  const registryFile = files.registry === undefined ? undefined : parseText(files.registry, "registry", "model_registry.json");
  const settingsFile = files.runtimeSettings === undefined ? undefined : parseText(files.runtimeSettings, "runtimeSettings", "runtime_settings.json");
  const registryValue = registryFile?.value;
  const settingsValue = settingsFile?.value;
  const duplicateIssues = registryDuplicates(registryFile?.duplicates ?? []);
  if (registryValue === undefined && settingsValue === undefined) {
    throw ServiceError.invalid([{ path: "registry", message: "give model_registry.json or runtime_settings.json, or both" }]);
  }
  let entries: [string, unknown][] = [];
  if (registryValue !== undefined) {
    const r = seedRegistrySchema.safeParse(registryValue);
    if (!r.success) throw ServiceError.invalid(issuesFromZod(r.error, "registry"));
    entries = Object.entries(r.data.models);
    if (entries.length > MAX_MODELS) throw ServiceError.invalid([{ path: "registry.models", message: `has ${entries.length} models; at most ${MAX_MODELS} are imported at once` }]);
  }

  return writeTransaction(db, async (tx) => {
    const host = await tx.host.findUnique({ where: { id: opts.hostId }, select: { id: true, name: true, registryModelsRoot: true, hostModelsRoot: true } });
    if (!host) throw ServiceError.invalid([{ path: "hostId", message: `no host with id ${opts.hostId}` }]);
    const report: ImportReport = { created: [], updated: [], unchanged: [], invalid: [], settings: "absent", settingsIssues: [] };

    if (settingsValue !== undefined) await importSettings(tx, settingsValue, settingsFile?.duplicates ?? [], report);

    const existingByName = new Map(
      (await tx.model.findMany({ select: { id: true, name: true, hostId: true, port: true, filePath: true, enabled: true, gpuLayers: true, ctxSize: true, threads: true, batchSize: true, ubatchSize: true, family: true, quantization: true, parameterCount: true, loadPolicy: true, idleTimeoutMs: true, concurrency: true, queueLimit: true, host: { select: { name: true } } } })).map((m) => [m.name, m]),
    );
    // Ports on this host held by models the file does not mention (or mentions under another port).
    const portOwner = new Map<number, string>();
    for (const m of existingByName.values()) if (m.hostId === host.id) portOwner.set(m.port, m.name);

    const planned: Planned[] = [];
    const claimed = new Map<number, string>(); // port → model_id, for this file's entries
    for (const [modelId, raw] of entries) {
      const issues: FieldIssue[] = [...(duplicateIssues.get(modelId) ?? [])];
      const idCheck = serverIdSchema.safeParse(modelId);
      if (!idCheck.success) issues.push(...issuesFromZod(idCheck.error, "model_id"));
      const parsed = seedModelSchema.safeParse(raw);
      if (!parsed.success) {
        issues.push(...(typeof raw === "object" && raw !== null ? issuesFromZod(parsed.error) : [{ path: "", message: "must be an object with file_path, port, enabled, ..." }]));
        report.invalid.push({ modelId, issues });
        continue;
      }
      const entry = parsed.data;
      try {
        toHostPath(host, entry.file_path, "file_path");
      } catch (err) {
        issues.push(...((err as ServiceError).issues ?? [{ path: "file_path", message: (err as Error).message }]));
      }
      const existing = existingByName.get(modelId) ?? null;
      if (existing && existing.hostId !== host.id) {
        issues.push({ path: "model_id", message: `a model named ${modelId} already exists on host ${existing.host.name}; rename one of them` });
      }
      const port = entry.port ?? null;
      if (port !== null) {
        const owner = portOwner.get(port);
        if (port === opts.appPort) issues.push({ path: "port", message: `${port} is the app's own port; choose another` });
        else if (owner !== undefined && owner !== modelId) issues.push({ path: "port", message: `${port} is already used by model ${owner} on host ${host.name}; choose a free port` });
        else if (claimed.has(port)) issues.push({ path: "port", message: `${port} is also given to ${claimed.get(port)} in this file; choose a free port` });
      }
      if (issues.length) {
        report.invalid.push({ modelId, issues });
        continue;
      }
      if (port !== null) claimed.set(port, modelId);
      planned.push({ modelId, columns: columnsOf(entry), port, existing: existing ? { id: existing.id, port: existing.port, row: existing } : null });
    }

    // Entries without a port (the seed ran out of its range) keep theirs or get the lowest free one.
    const taken = new Set<number>([opts.appPort, ...portOwner.keys(), ...claimed.keys()]);
    for (const p of planned) {
      if (p.port !== null) continue;
      if (p.existing) p.port = p.existing.port;
      else {
        let free = 8080;
        while (taken.has(free) && free <= 65535) free++;
        if (free > 65535) {
          report.invalid.push({ modelId: p.modelId, issues: [{ path: "port", message: `is null and host ${host.name} has no free port left` }] });
          p.port = -1;
          continue;
        }
        p.port = free;
      }
      taken.add(p.port);
    }

    for (const p of planned) {
      if (p.port === -1) continue;
      const columns = { ...p.columns, port: p.port! };
      if (!p.existing) {
        await tx.model.create({ data: { ...columns, name: p.modelId, hostId: host.id, source: "imported", server: { create: { desired: "stopped" } } } });
        report.created.push(p.modelId);
        continue;
      }
      const changed = Object.fromEntries(Object.entries(columns).filter(([k, v]) => p.existing!.row[k] !== v));
      if (Object.keys(changed).length === 0) {
        report.unchanged.push(p.modelId);
        continue;
      }
      await tx.model.update({ where: { id: p.existing.id }, data: changed });
      report.updated.push(p.modelId);
    }
    return report;
  });
}

async function importSettings(tx: Tx, value: unknown, duplicates: DuplicateKey[], report: ImportReport): Promise<void> {
  const r = seedSettingsSchema.safeParse(value);
  const twice = duplicates.filter((d) => d.path.length === 0).map((d) => ({ path: d.key, message: `appears on ${describeLines(d.lines)} of runtime_settings.json; ${KEPT_LAST} keep one` }));
  if (!r.success || twice.length > 0) {
    report.settings = "invalid";
    report.settingsIssues = [...twice, ...(r.success ? [] : issuesFromZod(r.error))];
    return;
  }
  const s = r.data;
  const current = await settingsIn(tx);
  const patch: Prisma.RuntimeSettingsUpdateInput = {
    gpuLayers: s.n_gpu_layers,
    ctxSize: s.ctx_size,
    threads: s.threads,
    batchSize: s.batch_size,
    ubatchSize: s.ubatch_size,
    flashAttn: s.flash_attn === undefined ? undefined : s.flash_attn ? "on" : "off",
    // The seed knows mmap or not; "mlock" (mmap and lock) is kept when it says mmap.
    loadMode: s.no_mmap === undefined ? undefined : s.no_mmap ? "no-mmap" : current.loadMode === "no-mmap" ? "mmap" : current.loadMode,
  };
  report.settings = (await applySettingsPatch(tx, patch)).changed ? "updated" : "unchanged";
}
