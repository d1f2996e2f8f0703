/**
 * Input schemas for the registry's boundaries (tRPC routers, REST, the import
 * CLI). Types are inferred from them. Numeric bounds match the agent's
 * serverSpecSchema, so anything saved here also makes a valid spec.
 */
import { extraFlagSchema, flashAttnSchema, loadModeSchema, portSchema, serverIdSchema } from "synapse-host-agent/protocol";
import { z } from "zod";
import { modelPortsSchema } from "./model-ports";

/** Same as synapse-host-agent/link's FINGERPRINT_PATTERN (not imported: that module pulls in ssh2). */
export const FINGERPRINT_PATTERN = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** A bounded whole number; `hint` is a unit (" milliseconds": "must be a number of milliseconds") or a note in parentheses. */
const int = (min: number, max: number, hint = "") =>
  z
    .number({ error: `must be a number${hint.startsWith(" (") || hint === "" ? hint : ` of${hint}`}` })
    .int(`must be a whole number between ${min} and ${max}${hint}`)
    .min(min, `must be between ${min} and ${max}${hint}`)
    .max(max, `must be between ${min} and ${max}${hint}`);

/** Bounds shared by per-model overrides and the global defaults. */
export const runtimeBounds = {
  ctxSize: int(0, 1_048_576, " (0 = the model's trained context length)"),
  gpuLayers: int(-1, 999, " (-1 = auto, 99 = all layers on the GPU)"),
  threads: int(-1, 1024, " (-1 = every logical CPU; empty = llama-server's own count)"),
  batchSize: int(1, 65_536),
  ubatchSize: int(1, 65_536),
  parallel: int(1, 256),
  readinessDeadlineMs: int(100, 3_600_000, " milliseconds"),
  stopGraceMs: int(0, 600_000, " milliseconds"),
  idleTimeoutMs: int(1000, 7 * 24 * 3_600_000, " milliseconds"),
} as const;

/** How the gateway starts a model: with START ALL ENABLED, or on the first request that names it. */
export const LOAD_POLICIES = ["always", "on-demand"] as const;
const loadPolicy = z.enum(LOAD_POLICIES, { error: "must be always or on-demand" });
/** The gateway's per-model limits. */
export const gatewayBounds = {
  concurrency: int(1, 256),
  queueLimit: int(0, 10_000),
} as const;

/** Memory plans: a host's budget set by hand (MiB, up to 16 TiB), a model's start priority. */
export const memoryBounds = {
  memoryBudgetMiB: int(16, 16 * 1024 * 1024, " MiB"),
  startPriority: int(-1000, 1000, " (higher starts first)"),
} as const;

const flashAttn = z.enum(flashAttnSchema.options, { error: "must be on, off or auto" });
const loadMode = z.enum(loadModeSchema.options, { error: "must be mmap, no-mmap or mlock" });

const noDotDot = (p: string) => !p.split(/[\\/]/).includes("..");
const absolutePath = (max: number) =>
  z
    .string({ error: "must be a path" })
    .trim()
    .min(1, "must not be empty")
    .max(max, `must be at most ${max} characters`)
    .refine((p) => p.startsWith("/"), "must be an absolute path (starting with /)")
    .refine(noDotDot, "must not contain '..' segments")
    .refine((p) => !p.includes("\0"), "must not contain NUL characters");

const ggufPath = absolutePath(1024).refine((p) => p.toLowerCase().endsWith(".gguf"), "must name a .gguf file");
const id = z.string({ error: "must be an id" }).trim().min(1, "must not be empty").max(64, "must be at most 64 characters");

export const modelNameSchema = serverIdSchema;
export { portSchema };

// ---------------------------------------------------------------- hosts

export const linkKindSchema = z.enum(["local", "ssh"], { error: "must be local or ssh" });
export const upstreamModeSchema = z.enum(["tunnel", "direct"], { error: "must be tunnel or direct" });

/** Fields models.get / models.list return that no edit sets (the file's metadata, times, relations). */
export const MODEL_READ_ONLY = ["architecture", "parameterCount", "quantization", "contextLength", "sizeBytes", "family", "source", "createdAt", "updatedAt", "host", "server", "shape"] as const;
/** Fields hosts.get / hosts.list return that no edit sets. */
export const HOST_READ_ONLY = ["createdAt", "updatedAt", "modelCount"] as const;

/**
 * zod's `error` for an update's object: keys it does not take are named, and
 * those a read returns (a script that changed a `get` result and sent it back)
 * are said to be read-only, instead of zod's bare "Unrecognized keys".
 */
function unknownKeys(procedure: string, readOnly: readonly string[]) {
  return (iss: { code?: string; keys?: string[] }): string | undefined => {
    if (iss.code !== "unrecognized_keys" || !iss.keys) return undefined;
    const ro = iss.keys.filter((k) => readOnly.includes(k));
    const other = iss.keys.filter((k) => !readOnly.includes(k));
    return [...(ro.length > 0 ? [`${ro.join(", ")} ${ro.length === 1 ? "is" : "are"} read-only (a read returns ${ro.length === 1 ? "it" : "them"}); leave ${ro.length === 1 ? "it" : "them"} out`] : []), ...(other.length > 0 ? [`${other.join(", ")}: not ${other.length === 1 ? "a field" : "fields"} ${procedure} takes`] : [])].join("; ");
  };
}

/** A host's editable fields as stored, each checked on its own; a nullable one given as null is cleared. */
const hostFields = {
  name: z
    .string({ error: "must be a name" })
    .trim()
    .min(1, "must not be empty")
    .max(64, "must be at most 64 characters")
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' or '-' (starting with a letter or digit)"),
  linkKind: linkKindSchema,
  sshHost: z.string().trim().min(1, "must not be empty").max(255, "must be at most 255 characters").regex(/^[A-Za-z0-9._:-]+$/, "must be a host name, IP address or ssh config alias").nullish(),
  sshPort: z.number({ error: "must be a number" }).int("must be a whole number").min(1, "must be between 1 and 65535").max(65535, "must be between 1 and 65535"),
  sshUser: z.string().trim().min(1, "must not be empty").max(64, "must be at most 64 characters").regex(/^[A-Za-z0-9._-]+$/, "must be a plain user name").nullish(),
  sshIdentityFile: z.string().trim().min(1, "must not be empty").max(1024, "must be at most 1024 characters").nullish(),
  hostKeyFingerprint: z.string().trim().regex(FINGERPRINT_PATTERN, "must look like SHA256:<43 base64 characters>, as `ssh-keygen -lf` prints it").nullish(),
  hostModelsRoot: absolutePath(1024).nullish(),
  registryModelsRoot: absolutePath(1024).nullish(),
  llamaServerBin: absolutePath(1024).nullish(),
  /** ssh hosts: "tunnel" (a channel on the host's ssh connection) or "direct" (directAddress:PORT). */
  upstreamMode: upstreamModeSchema,
  /** Ports the key may open channels to (scripts/setup-ssh.sh --model-ports), `8080-8099`. */
  modelPorts: modelPortsSchema.nullish(),
  /** Direct mode's address; absent: host.docker.internal. */
  directAddress: z.string().trim().min(1, "must not be empty").max(255, "must be at most 255 characters").regex(/^[A-Za-z0-9._:-]+$/, "must be a host name or IP address").nullish(),
  /** The host's memory budget for llama-servers, in MiB; null: what its agent reports. */
  memoryBudgetMiB: memoryBounds.memoryBudgetMiB.nullish(),
};

/**
 * Fields only an ssh host uses, each with what it is for (said when one is
 * given for a local host, whose agent runs in the app's process and whose
 * servers listen on this machine's loopback) and its value on a host that
 * has none (what the upsert saves when it is left out).
 */
export const SSH_ONLY_FIELDS = {
  sshHost: { what: "the address the ssh link connects to", cleared: null },
  sshPort: { what: "the port the ssh link connects to", cleared: 22 },
  sshUser: { what: "the user the ssh link logs in as", cleared: null },
  sshIdentityFile: { what: "the private key the ssh link logs in with", cleared: null },
  hostKeyFingerprint: { what: "the host key the ssh link pins", cleared: null },
  upstreamMode: { what: "how the gateway reaches the models over ssh", cleared: "tunnel" },
  modelPorts: { what: "the port range forwarded over ssh", cleared: null },
  directAddress: { what: "the address direct mode reaches an ssh host's models at", cleared: null },
} as const satisfies Partial<Record<keyof typeof hostFields, { what: string; cleared: string | number | null }>>;
export type SshOnlyField = keyof typeof SSH_ONLY_FIELDS;
export const isSshOnlyField = (k: string): k is SshOnlyField => Object.hasOwn(SSH_ONLY_FIELDS, k);

/**
 * Fields only one upstream mode of an ssh host uses (the gateway reads the
 * range in tunnel mode, the address in direct mode), each with that mode.
 * Given for the other mode, one is refused naming it: it would have no effect.
 */
export const UPSTREAM_MODE_FIELDS = { modelPorts: "tunnel", directAddress: "direct" } as const satisfies Partial<Record<SshOnlyField, z.infer<typeof upstreamModeSchema>>>;
export type UpstreamModeField = keyof typeof UPSTREAM_MODE_FIELDS;
/** True when `field` is one upstream mode's own and `mode` is the other. */
export const isOtherModeField = (field: string, mode: string): boolean => Object.hasOwn(UPSTREAM_MODE_FIELDS, field) && UPSTREAM_MODE_FIELDS[field as UpstreamModeField] !== mode;

/**
 * The whole host, as the dashboard's form sends it: fields left out are
 * cleared or take their default. hosts.update checks the host it would save
 * (the stored one with the given fields over it) with this schema too.
 * A local host given an ssh-only field (SSH_ONLY_FIELDS; a value other than
 * its cleared one) is refused naming that field: it would have no effect.
 * So is an ssh host given the other upstream mode's field (UPSTREAM_MODE_FIELDS:
 * modelPorts in direct mode, directAddress in tunnel mode).
 */
export const hostUpsertInput = z
  .object({
    /** Present: update that host; absent: create (or update the host of that name). */
    id: id.optional(),
    ...hostFields,
    linkKind: hostFields.linkKind.default("local"),
    sshPort: hostFields.sshPort.default(22),
    upstreamMode: hostFields.upstreamMode.default("tunnel"),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.linkKind === "ssh" && !h.sshHost) {
      ctx.addIssue({ code: "custom", path: ["sshHost"], message: "is required for an ssh host (a host name, IP address or an alias from the ssh config)" });
    }
    if (h.linkKind === "local") {
      for (const [field, { what, cleared }] of Object.entries(SSH_ONLY_FIELDS)) {
        const v = h[field as SshOnlyField];
        if (v !== undefined && v !== null && v !== cleared) ctx.addIssue({ code: "custom", path: [field], message: `applies to ssh hosts only (${what}); remove it or set linkKind to ssh` });
      }
    }
    if (h.linkKind === "ssh") {
      for (const [field, mode] of Object.entries(UPSTREAM_MODE_FIELDS)) {
        const v = h[field as UpstreamModeField];
        if (v !== undefined && v !== null && mode !== h.upstreamMode) {
          ctx.addIssue({ code: "custom", path: [field], message: `applies to ${mode} mode only (${SSH_ONLY_FIELDS[field as UpstreamModeField].what}); remove it or set upstreamMode to ${mode}` });
        }
      }
    }
    if (Boolean(h.hostModelsRoot) !== Boolean(h.registryModelsRoot)) {
      const missing = h.hostModelsRoot ? "registryModelsRoot" : "hostModelsRoot";
      ctx.addIssue({ code: "custom", path: [missing], message: "set both hostModelsRoot and registryModelsRoot to map model paths, or neither" });
    }
  });
export type HostUpsertInput = z.input<typeof hostUpsertInput>;
export type HostUpsert = z.output<typeof hostUpsertInput>;

export const hostIdInput = z.object({ id }).strict();

/**
 * Some fields of a host; `id` names it. Fields left out keep their stored
 * values, null clears a nullable one. Each field is checked here; the host
 * as a whole (ssh needs sshHost, both model roots or neither) once merged
 * with the stored one, by hostUpsertInput.
 */
export const hostUpdateInput = z.object(hostFields, { error: unknownKeys("hosts.update", HOST_READ_ONLY) }).partial().extend({ id: z.string({ error: "is required: the id of the host to change" }).pipe(id) }).strict();
export type HostUpdateInput = z.input<typeof hostUpdateInput>;
export type HostUpdate = z.output<typeof hostUpdateInput>;

// ---------------------------------------------------------------- models

/** Fields a user sets on a model; null in an override means "use the global default". */
const modelFields = {
  name: modelNameSchema,
  hostId: id,
  filePath: ggufPath,
  port: portSchema,
  enabled: z.boolean({ error: "must be true or false" }),
  ctxSize: runtimeBounds.ctxSize.nullable(),
  gpuLayers: runtimeBounds.gpuLayers.nullable(),
  threads: runtimeBounds.threads.nullable(),
  batchSize: runtimeBounds.batchSize.nullable(),
  ubatchSize: runtimeBounds.ubatchSize.nullable(),
  flashAttn: flashAttn.nullable(),
  loadMode: loadMode.nullable(),
  parallel: runtimeBounds.parallel.nullable(),
  alias: z.string().max(128, "must be at most 128 characters").regex(/^[^\0\n\r]*$/, "must be one line").nullable(),
  readinessDeadlineMs: runtimeBounds.readinessDeadlineMs.nullable(),
  loadPolicy,
  idleTimeoutMs: runtimeBounds.idleTimeoutMs.nullable(),
  concurrency: gatewayBounds.concurrency.nullable(),
  queueLimit: gatewayBounds.queueLimit.nullable(),
  startPriority: memoryBounds.startPriority.nullable(),
  /** true: its server runs without its own key (clients that talk to its port directly). */
  serverApiKeyOff: z.boolean({ error: "must be true or false" }),
  extraFlags: z.array(extraFlagSchema).max(32, "at most 32 extra flags"),
  /** llama-server's --cache-ram (MiB); 0 turns the host prompt cache off; null: llama-server's 8192. */
  cacheRamMiB: int(0, 1_048_576, " MiB (0 = no prompt cache)").nullable(),
  family: z.string().max(64, "must be at most 64 characters").nullable(),
};

export const modelCreateInput = z
  .object({
    ...modelFields,
    /** Omitted: the only host (an error when there are several). */
    hostId: modelFields.hostId.optional(),
    enabled: modelFields.enabled.default(false),
    ctxSize: modelFields.ctxSize.default(null),
    gpuLayers: modelFields.gpuLayers.default(null),
    threads: modelFields.threads.default(null),
    batchSize: modelFields.batchSize.default(null),
    ubatchSize: modelFields.ubatchSize.default(null),
    flashAttn: modelFields.flashAttn.default(null),
    loadMode: modelFields.loadMode.default(null),
    parallel: modelFields.parallel.default(null),
    alias: modelFields.alias.default(null),
    readinessDeadlineMs: modelFields.readinessDeadlineMs.default(null),
    loadPolicy: modelFields.loadPolicy.default("always"),
    idleTimeoutMs: modelFields.idleTimeoutMs.default(null),
    concurrency: modelFields.concurrency.default(null),
    queueLimit: modelFields.queueLimit.default(null),
    startPriority: modelFields.startPriority.default(null),
    serverApiKeyOff: modelFields.serverApiKeyOff.default(false),
    extraFlags: modelFields.extraFlags.default([]),
    cacheRamMiB: modelFields.cacheRamMiB.default(null),
    family: modelFields.family.default(null),
  })
  .strict();
export type ModelCreateInput = z.input<typeof modelCreateInput>;
export type ModelCreate = z.output<typeof modelCreateInput>;

/** Only the fields given change; `id` names the model. */
export const modelUpdateInput = z.object(modelFields, { error: unknownKeys("models.update", MODEL_READ_ONLY) }).partial().extend({ id: z.string({ error: "is required: the id of the model to change" }).pipe(id) }).strict();
export type ModelUpdateInput = z.input<typeof modelUpdateInput>;
export type ModelUpdate = z.output<typeof modelUpdateInput>;

export const modelIdInput = z.object({ id }).strict();
/**
 * The model page's live estimate: a saved model with the form's unsaved runtime values over it. A field
 * left out keeps the saved value; null is the global default, as on save.
 */
export const modelEstimateInput = z
  .object({
    id,
    ctxSize: modelFields.ctxSize,
    gpuLayers: modelFields.gpuLayers,
    parallel: modelFields.parallel,
    batchSize: modelFields.batchSize,
    ubatchSize: modelFields.ubatchSize,
    flashAttn: modelFields.flashAttn,
    loadMode: modelFields.loadMode,
    cacheRamMiB: modelFields.cacheRamMiB,
    extraFlags: modelFields.extraFlags,
  })
  .partial()
  .required({ id: true })
  .strict();
export type ModelEstimateInput = z.input<typeof modelEstimateInput>;
export const modelSetEnabledInput = z.object({ id, enabled: z.boolean({ error: "must be true or false" }) }).strict();
export const modelListInput = z.object({ hostId: id.optional(), enabled: z.boolean().optional() }).strict().default({});

// ---------------------------------------------------------------- settings

export const settingsUpdateInput = z
  .object({
    ...runtimeBounds,
    /** null: no --threads, llama-server counts the host's cores itself (physical; Apple Silicon: performance). */
    threads: runtimeBounds.threads.nullable(),
    flashAttn,
    loadMode,
    autoRestart: z.boolean({ error: "must be true or false" }),
  })
  .partial()
  .strict();
export type SettingsUpdateInput = z.input<typeof settingsUpdateInput>;

// ---------------------------------------------------------------- discovery and import

export const discoverInput = z.object({ hostId: id.optional() }).strict().default({});

/**
 * The seed's two files as parsed JSON (or their text). Their shape is checked
 * entry by entry during the import, so one bad model does not stop the rest.
 */
export const importInput = z
  .object({
    registry: z.unknown().optional(),
    runtimeSettings: z.unknown().optional(),
    /** Omitted: the default host. */
    hostId: id.optional(),
  })
  .strict()
  .refine((v) => v.registry !== undefined || v.runtimeSettings !== undefined, { message: "give registry (model_registry.json) or runtimeSettings (runtime_settings.json), or both", path: ["registry"] });
export type ImportInput = z.input<typeof importInput>;
