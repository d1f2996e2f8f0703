/**
 * A model's row, its host and the global defaults → the fully resolved spec
 * the agent runs. Per-model nulls fall back to the defaults, except the
 * context size, which memory/context-size.ts decides (the default never
 * exceeds the model's trained context); the model path is translated to the
 * host's name for it.
 */
import { serverSpecSchema, type ServerSpec } from "synapse-host-agent/protocol";
import type { Host, Model, RuntimeSettings } from "~/generated/prisma/client";
import { issuesFromZod, ServiceError } from "../errors";
import { contextSize } from "../memory/context-size";
import { toHostPath } from "./paths";
import { formatIssues } from "synapse-host-agent/error-text";

/** A Model row, or a ModelView (whose extraFlags are already parsed). */
export type SpecModel = Pick<
  Model,
  "name" | "filePath" | "port" | "ctxSize" | "contextLength" | "gpuLayers" | "threads" | "batchSize" | "ubatchSize" | "flashAttn" | "loadMode" | "parallel" | "alias" | "readinessDeadlineMs"
> & { extraFlags: string | readonly unknown[]; cacheRamMiB?: number | null };
export type SpecHost = Pick<Host, "name" | "registryModelsRoot" | "hostModelsRoot">;
export type SpecSettings = Pick<
  RuntimeSettings,
  "ctxSize" | "gpuLayers" | "threads" | "batchSize" | "ubatchSize" | "flashAttn" | "loadMode" | "parallel" | "readinessDeadlineMs" | "stopGraceMs"
>;

/** The model's extraFlags column (JSON text) as an array; BAD_REQUEST when it is not JSON. */
export function parseExtraFlagsColumn(text: string, modelName: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ServiceError("BAD_REQUEST", `model ${modelName}: extraFlags is not valid JSON; save the model's extra flags again`, {
      issues: [{ path: "extraFlags", message: "is not valid JSON" }],
      cause,
    });
  }
  if (!Array.isArray(value)) throw ServiceError.invalid([{ path: "extraFlags", message: `model ${modelName}: must be a list of {flag, value}` }]);
  return value;
}

/**
 * The model's own llama-server key (the agent passes it as LLAMA_API_KEY,
 * out of `ps`; /health stays open), for resolveSpec's `apiKey`; undefined
 * when the model opted out. Read from the row: API views never carry it.
 */
export function serverApiKeyOf(model: Pick<Model, "serverApiKey" | "serverApiKeyOff">): string | undefined {
  return model.serverApiKey && !model.serverApiKeyOff ? model.serverApiKey : undefined;
}

export function resolveSpec(model: SpecModel, host: SpecHost, settings: SpecSettings, opts: { apiKey?: string } = {}): ServerSpec {
  const threads = model.threads ?? settings.threads;
  const candidate = {
    id: model.name,
    modelPath: toHostPath(host, model.filePath, "filePath"),
    port: model.port,
    bindAddress: "127.0.0.1",
    // The global default is capped at the model's trained context (context-size.ts says why).
    ctxSize: contextSize(model, settings).ctxSize,
    gpuLayers: model.gpuLayers ?? settings.gpuLayers,
    // Neither set: no --threads, llama-server counts the host's cores itself (the spec's field says how).
    ...(threads !== null ? { threads } : {}),
    batchSize: model.batchSize ?? settings.batchSize,
    ubatchSize: model.ubatchSize ?? settings.ubatchSize,
    flashAttn: model.flashAttn ?? settings.flashAttn,
    loadMode: model.loadMode ?? settings.loadMode,
    parallel: model.parallel ?? settings.parallel,
    // llama-server names its model by --alias in its answers (`model` of a chat completion, /v1/models);
    // without one it shows the file path. The registry name is what clients ask the gateway for.
    alias: model.alias != null && model.alias !== "" ? model.alias : model.name,
    ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
    readinessDeadlineMs: model.readinessDeadlineMs ?? settings.readinessDeadlineMs,
    stopGraceMs: settings.stopGraceMs,
    extraFlags: typeof model.extraFlags === "string" ? parseExtraFlagsColumn(model.extraFlags, model.name) : model.extraFlags,
    // Only when set: an agent without "cache-ram" refuses a spec that names it.
    ...(model.cacheRamMiB != null ? { cacheRamMiB: model.cacheRamMiB } : {}),
  };
  const r = serverSpecSchema.safeParse(candidate);
  if (!r.success) {
    // Spec fields named as the model's fields, so the dashboard can put each beside its input.
    const issues = issuesFromZod(r.error).map((i) => ({ ...i, path: i.path.replace(/^id\b/, "name").replace(/^modelPath\b/, "filePath") }));
    throw new ServiceError("BAD_REQUEST", `model ${model.name} does not make a valid server spec: ${formatIssues(issues, "(spec)")}`, { issues });
  }
  return r.data;
}

/**
 * The spec as a host's agent can take it. `features`: its hello's features; null before its hello was
 * read (the spec is sent as it is). An agent older than "cache-ram" refuses a spec that names
 * `cacheRamMiB` (its schema is strict), and one such spec in `apply` would make it refuse the host's
 * whole desired set: `apply` gets the spec without it (`dropped` says so); a start of that model is
 * refused by the caller with `dropped` as the reason to show. An agent older than "threads-auto" needs
 * a thread count: a spec without one gets -1 (llama-server's every logical CPU of that host), not a
 * fixed number that would not fit the host.
 */
export function specForAgent(spec: ServerSpec, features: readonly string[] | null, hostName: string): { spec: ServerSpec; dropped: string | null } {
  if (features === null) return { spec, dropped: null };
  const fitted = spec.threads === undefined && !features.includes("threads-auto") ? { ...spec, threads: -1 } : spec;
  if (fitted.cacheRamMiB === undefined || features.includes("cache-ram")) return { spec: fitted, dropped: null };
  const { cacheRamMiB: _dropped, ...rest } = fitted;
  return { spec: rest, dropped: `model ${spec.id} sets a prompt cache cap (--cache-ram ${spec.cacheRamMiB} MiB), which the agent on ${hostName} does not support: update the agent on ${hostName}, or clear the model's prompt cache setting` };
}
