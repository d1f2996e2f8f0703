/**
 * The host agent's wire protocol: every request, reply and event that crosses
 * between the control plane and an agent, as zod schemas. Types are inferred
 * from the schemas; nothing here is written twice.
 *
 * Transport-neutral: the local link passes these objects in memory, the ssh
 * link sends them as JSON lines (one message a line) over an exec channel.
 */
import { z } from "zod";
import { EXTRA_FLAGS, extraFlagNameProblem, extraFlagValueProblem, type ExtraFlagName } from "./extra-flags.ts";
import { APP_NOTE_MAX_CHARS } from "./shared/run-header.ts";
import { SERVER_STATES, STOP_CAUSES } from "./shared/server-states.ts";
import { formatIssues } from "./shared/error-text.ts";
import { modelShapeSchema } from "./shared/model-shape.ts";

export { APP_NOTE_MAX_CHARS } from "./shared/run-header.ts";
export { ALIVE_STATES, isAlive, SERVER_STATES, STOP_CAUSES, STOP_CAUSE_TEXT, type ServerStateName, type StopCause } from "./shared/server-states.ts";

/** Bumped on any incompatible change; `hello` lets each side refuse a mismatch. */
export const PROTOCOL_VERSION = 1;

/** Longest string any field accepts: bounds memory and log sizes per message. */
const MAX_STRING = 4096;
const boundedString = (max = MAX_STRING) => z.string().max(max, `must be at most ${max} characters`);

export const serverIdSchema = z
  .string()
  .min(1, "must not be empty")
  .max(64, "must be at most 64 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "use letters, digits, '.', '_' or '-' (starting with a letter or digit)");

export const portSchema = z
  .number({ error: "must be a number" })
  .int("must be an integer")
  .min(1024, "must be between 1024 and 65535")
  .max(65535, "must be between 1024 and 65535");

/** Flags a spec may add beyond the typed fields (the list lives in extra-flags.ts). Anything else is refused. */
export { EXTRA_FLAGS, type ExtraFlagName };

const extraFlagNames = Object.keys(EXTRA_FLAGS) as [ExtraFlagName, ...ExtraFlagName[]];

export const extraFlagSchema = z
  .object(
    {
      // A flag the model has its own field for is refused naming that field (FLAGS_WITH_FIELDS).
      flag: z.enum(extraFlagNames, { error: (i) => extraFlagNameProblem(i.input) }),
      value: boundedString(128).optional(),
    },
    // A bare "--embeddings" is the usual first try from a script: say the shape.
    { error: (i) => (i.code === "invalid_type" ? `an extra flag is an object {"flag": "--name", "value": "…"} (value only for a flag that takes one), e.g. {"flag": "--embeddings"}; got ${JSON.stringify(i.input)}` : undefined) },
  )
  .strict()
  .superRefine((f, ctx) => {
    // Values llama-server would refuse at start (a closed set, an integer beyond 32 bits) are refused here.
    const problem = extraFlagValueProblem(f.flag, f.value);
    if (problem !== null) ctx.addIssue({ code: "custom", path: ["value"], message: problem });
  });
export type ExtraFlag = z.infer<typeof extraFlagSchema>;

export const flashAttnSchema = z.enum(["on", "off", "auto"]);
/** mmap: llama.cpp's default; no-mmap: read the file into memory; mlock: mmap and lock pages. */
export const loadModeSchema = z.enum(["mmap", "no-mmap", "mlock"]);

/** Everything the agent needs to run one llama-server. Fully resolved: no "use the default" nulls. */
export const serverSpecSchema = z
  .object({
    id: serverIdSchema,
    modelPath: boundedString(1024).min(1, "must not be empty"),
    port: portSchema,
    bindAddress: z.union([z.ipv4(), z.ipv6(), z.literal("localhost")], { error: "must be an IP address or 'localhost'" }).default("127.0.0.1"),
    ctxSize: z.number().int().min(0).max(1_048_576),
    gpuLayers: z.number().int().min(-1).max(999),
    /**
     * llama-server's --threads; -1: every logical CPU (std::thread::hardware_concurrency). Absent: no --threads,
     * so llama-server picks its own count (llama.cpp's cpu_get_num_math: physical cores, on Apple Silicon the
     * performance cores). Agents with "threads-auto"; the app gives an older agent -1 instead.
     */
    threads: z.number().int().min(-1).max(1024).optional(),
    batchSize: z.number().int().min(1).max(65_536),
    ubatchSize: z.number().int().min(1).max(65_536),
    flashAttn: flashAttnSchema,
    loadMode: loadModeSchema,
    parallel: z.number().int().min(1).max(256),
    alias: boundedString(128).regex(/^[^\0\n\r]*$/, "must be one line").optional(),
    apiKey: boundedString(256).regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces").optional(),
    readinessDeadlineMs: z.number().int().min(100).max(3_600_000),
    stopGraceMs: z.number().int().min(0).max(600_000),
    extraFlags: z.array(extraFlagSchema).max(32).default([]),
    /**
     * llama-server's --cache-ram (MiB; 0: no host prompt cache). Absent: llama-server's default (8192).
     * Agents with "cache-ram"; the app sends it only when a model sets it.
     */
    cacheRamMiB: z.number().int().min(0).max(1_048_576).optional(),
  })
  .strict();
export type ServerSpec = z.infer<typeof serverSpecSchema>;
export type ServerSpecInput = z.input<typeof serverSpecSchema>;

/** The states a server can be in; their meanings are in shared/server-states.ts (one vocabulary for every package). */
export const serverStateSchema = z.enum(SERVER_STATES);
export type ServerState = z.infer<typeof serverStateSchema>;

/**
 * A stop that ended every process the server started but left its port held (by a process that escaped it, or
 * one that took the port meanwhile): the port, and the holder as the agent found it (`holderPid` null when the
 * holder is not visible to the agent's user). The agent's stop of such a server looks for the holder again.
 */
export const stopIncompleteSchema = z.object({
  port: portSchema,
  holderPid: z.number().int().positive().nullable(),
  holderCommand: boundedString().nullable(),
});
export type StopIncomplete = z.infer<typeof stopIncompleteSchema>;

export const serverStatusSchema = z.object({
  id: serverIdSchema,
  state: serverStateSchema,
  pid: z.number().int().nullable(),
  port: portSchema.nullable(),
  /** ISO time the process started, as the OS reports it. */
  startedAt: z.string().nullable(),
  readyAt: z.string().nullable(),
  exitCode: z.number().int().nullable(),
  signal: z.string().nullable(),
  /** Why the state is what it is ("exited with code 1 while loading", "health check timed out"). */
  reason: z.string().nullable(),
  logPath: z.string().nullable(),
  specHash: z.string().nullable(),
  /**
   * While a process runs: the arguments it was started with (after the binary; its spec's `specHash`), so a
   * saved change not yet applied can be told from what runs. Added after protocol 1 ("running-argv"): an older
   * agent leaves it out; absent too while no process runs.
   */
  argv: z.array(boundedString()).max(1024).optional(),
  /** Last lines of the server's log, when the state is a failure. */
  logTail: z.array(z.string()).default([]),
  /** For a stopped server: when it was stopped on the host (stop-metal-servers) and not started since. */
  hostStoppedAt: z.string().nullable().optional(),
  /**
   * Why a stopped, exited or failed server is not running (shared/server-states.ts). Added after
   * protocol 1 shipped: an older agent leaves it out, and the app then infers it. A cause this
   * checkout does not know (a newer agent's) reads as null, so the app infers it, rather than
   * refusing the whole status.
   */
  cause: z.enum(STOP_CAUSES).nullable().optional().catch(null),
  /**
   * Set on a `failed` status whose stop left the port held (its reason then reads "stop incomplete: port P
   * still held by pid N (name)"); null on every other status. Added after protocol 1 shipped (feature
   * stop-incomplete): an older agent leaves it out, and the app then reads the reason's words.
   */
  stopIncomplete: stopIncompleteSchema.nullable().optional(),
});
export type ServerStatus = z.infer<typeof serverStatusSchema>;

export const llamaServerInfoSchema = z.object({
  path: z.string().nullable(),
  version: z.string().nullable(),
  commit: z.string().nullable(),
  /** "load-mode" when the binary has --load-mode, "legacy" when it has --no-mmap/--mlock. */
  loadFlags: z.enum(["load-mode", "legacy"]).nullable(),
  /**
   * How the binary takes flash attention: "value" (`--flash-attn on|off|auto`), "bare" (`-fa`), "none".
   * Added after protocol 1 shipped (optional: an older agent leaves it out, and the app assumes "value").
   */
  flashAttn: z.enum(["value", "bare", "none"]).nullable().optional(),
  /**
   * The binary has `--fit on|off`, and the agent passes `--fit off` (so llama.cpp runs the settings the
   * memory plan estimated). Added after protocol 1 shipped: absent from older agents, which do not pass it.
   */
  fit: z.boolean().nullable().optional(),
  error: z.string().nullable(),
});
export type LlamaServerInfo = z.infer<typeof llamaServerInfoSchema>;

/**
 * What this agent can do beyond protocol 1, named in `hello.features`. The app and the agents update
 * separately: the app checks a feature here before it relies on it, and with an agent that lacks it
 * (an older checkout on a Mac) works without it and says "update the agent on HOST".
 *   stop-cause        every stopped / exited / failed status carries `cause`
 *   check-model-path  the `checkModelPath` method (a model's path checked when it is saved)
 *   owned-readiness   `ready` only when the listener that answered /health is the server's own process
 *                     (or one it started), never a foreign process that took the port
 *   complete-stop     a stop ends every process the server started (descendants that left its group
 *                     included) and confirms the port is free; when something still holds it the stop
 *                     answers `failed` with "stop incomplete: port P still held by pid N (name)", and a
 *                     start on that port is refused until it is free
 *   minimal-env       servers get PATH, HOME, locale, time zone and temp folder, plus what the agent sets
 *                     (LLAMA_API_KEY), not the agent's or the app's whole environment
 *   bounded-logs      a log file stays within its cap plus what is written during one rotation (checked at
 *                     every write), and live log events are bounded per server (200 lines/s, bursts of
 *                     1000) with a note "[synapse host-agent] N log lines skipped here …"
 *   cache-ram         a spec's `cacheRamMiB` (llama-server's --cache-ram) is accepted and passed
 *   model-shape       `discover` entries and `checkModelPath` answers carry the model's `shape`
 *                     (shared/model-shape.ts), which the app's memory estimates are computed from
 *   host-memory       the `hostMemory` method: the host's memory and the budget start plans charge against
 *   stop-with-cause   `stop` takes the app's `cause` (idle, evicted, …), which the stopped status, the
 *                     agent's log and its record then carry (an older agent refuses the field: the app sends
 *                     it only to an agent that names this, and the agent's side then says `requested`)
 *   rename-logs       the `renameLogs` method: a stopped server's log files move to another id's names
 *                     (the app calls it when a model is renamed, so its log history follows it)
 *   shutdown-cause    `stop` and `stopAll` take the cause `shutdown` (and `stopAll` takes a `cause` at all):
 *                     a stop at the app's shutdown reads so in the agent's log and status ("stopped at app
 *                     shutdown"). Agents with only stop-with-cause predate that cause and refuse it, so the
 *                     app sends it only to an agent that names this; the others say `requested`
 *   restart-cause     `stop` takes the cause `restart`: a restart's stop reads so in the agent's log (the run's
 *                     last line) and status ("stopped to restart"), not as a stop someone asked for. Agents
 *                     without it refuse that cause, so the app sends it only to an agent that names this
 *   log-note          the `logNote` method: the app's decision after a run ended (the restart after a crash and
 *                     when it comes, or why there is none) goes into the server's log as a line of its own
 *   port-holder       the `portHolder` method: who holds a port on the host now (the app asks it before a
 *                     restart onto a changed port, so the running server is not stopped for a start that
 *                     would be refused, and when a port is saved, to warn)
 *   log-search        `logs` takes `grep`: the lines of the whole log (the rotated copy and the current
 *                     file) that contain a text, with how many matched (the app's log search and
 *                     `synapse logs --grep`; with an older agent they search only the lines already read)
 *   stop-incomplete   every status carries `stopIncomplete`: on a `failed` status of a stop that left the port
 *                     held, the port and its holder; null otherwise (the reason's "stop incomplete: …" words
 *                     stay as they were, for apps older than the field)
 */
export const AGENT_FEATURES = ["stop-cause", "check-model-path", "owned-readiness", "complete-stop", "minimal-env", "bounded-logs", "model-shape", "cache-ram", "host-memory", "stop-with-cause", "rename-logs", "shutdown-cause", "stop-incomplete", "threads-auto", "running-argv", "port-holder", "log-search", "restart-cause", "log-note"] as const;
export type AgentFeature = (typeof AGENT_FEATURES)[number];

/** True when a `hello` result names `feature` (an agent older than features names none). */
export function agentHas(hello: { features?: readonly string[] | undefined }, feature: AgentFeature): boolean {
  return hello.features?.includes(feature) ?? false;
}

export const helloResultSchema = z.object({
  protocolVersion: z.number().int(),
  agentVersion: z.string(),
  hostname: z.string(),
  platform: z.string(),
  arch: z.string(),
  modelRoots: z.array(z.string()),
  llamaServer: llamaServerInfoSchema,
  /** Features beyond protocol 1 (AGENT_FEATURES); absent from agents older than the list. */
  features: z.array(z.string().max(64)).max(64).optional(),
});
export type HelloResult = z.infer<typeof helloResultSchema>;

export const ggufInfoSchema = z.object({
  path: z.string(),
  sizeBytes: z.number(),
  architecture: z.string().nullable(),
  name: z.string().nullable(),
  parameterCount: z.number().nullable(),
  quantization: z.string().nullable(),
  contextLength: z.number().nullable(),
  error: z.string().nullable(),
  /**
   * A split set (`x-00001-of-00003.gguf` …): parts in the set. The entry is
   * the first part; size and parameter count cover every part. Absent for a
   * single file and from agents older than this field.
   */
  splitCount: z.number().int().min(2).optional(),
  /**
   * A file in a Hugging Face cache snapshot: the snapshot's commit and the
   * refs (`main`, `pr/3`) that name it, none when no ref does.
   */
  revision: z.object({ commit: z.string().max(128), refs: z.array(z.string().max(256)).max(256) }).optional(),
  /**
   * The model's shape (every part of a split set), what memory estimates are computed from; absent
   * when the file's header lacks what llama.cpp needs (see `shapeError`) and from agents without
   * "model-shape".
   */
  shape: modelShapeSchema.optional(),
  /** Why a readable file has no shape (e.g. "no llama.block_count"). */
  shapeError: z.string().max(1024).optional(),
});
export type GgufInfo = z.infer<typeof ggufInfoSchema>;

/**
 * What `discover` says of a model file beyond its path, shape and errors (a split set: its first part, size
 * and parameter count over every part): the registry's architecture, parameter count, quantization, trained
 * context and size (bytes) of a model, whether it was scanned or saved by path.
 */
export const modelSummarySchema = ggufInfoSchema.pick({ sizeBytes: true, architecture: true, name: true, parameterCount: true, quantization: true, contextLength: true });
export type ModelSummary = z.infer<typeof modelSummarySchema>;

/** A device llama-server lists (`--list-devices`: "MTL0: Apple M3 Max (27648 MiB, 27647 MiB free)"). Bytes. */
export const memoryDeviceSchema = z.object({
  name: z.string().max(64),
  description: z.string().max(256),
  totalBytes: z.number().nonnegative(),
  freeBytes: z.number().nonnegative(),
});
export type MemoryDevice = z.infer<typeof memoryDeviceSchema>;

/**
 * A host's memory as its agent reads it (`hostMemory`, agents with "host-memory"). Every size in bytes.
 * macOS: `sysctl hw.memsize`, the Metal device's working-set size (`llama-server --list-devices`),
 * `sysctl iogpu.wired_limit_mb` when set, free pages from `vm_stat`. Linux: /proc/meminfo's MemTotal and
 * MemAvailable, and the GPUs `--list-devices` lists.
 */
export const hostMemorySchema = z.object({
  platform: z.string().max(32),
  /** Physical memory (hw.memsize, MemTotal). */
  totalBytes: z.number().nonnegative(),
  /** Free for new allocations now (vm_stat free + inactive + speculative pages; MemAvailable); null when unread. */
  availableBytes: z.number().nonnegative().nullable(),
  /** macOS: what Metal lets the GPU hold (iogpu.wired_limit_mb when set, else the device's working-set size); null when unknown. */
  gpuWorkingSetBytes: z.number().nonnegative().nullable(),
  /** macOS: iogpu.wired_limit_mb in bytes when set (non-zero); null otherwise. */
  wiredLimitBytes: z.number().nonnegative().nullable(),
  /** Devices llama-server lists besides the CPU. */
  devices: z.array(memoryDeviceSchema).max(64),
  /** What plans charge llama-servers against: the smallest limit that applies. */
  budgetBytes: z.number().nonnegative(),
  /** How the budget was chosen, for people ("Metal working set of MTL0 (Apple M3 Max)"). */
  basis: z.string().max(512),
  /** Readers that failed (a command missing, a deadline passed); the budget is then from what was read. */
  problems: z.array(z.string().max(1024)).max(16),
  /** ISO time of the reading. */
  at: z.string(),
  /** The host's CPUs and load averages (Node's os.availableParallelism and os.loadavg); absent from agents before it. */
  load: z
    .object({ cpus: z.number().int().positive(), load1: z.number().nonnegative(), load5: z.number().nonnegative(), load15: z.number().nonnegative() })
    .optional(),
});
export type HostMemory = z.infer<typeof hostMemorySchema>;

/** Each method: its params and its result. The single source for both ends. */
export const methods = {
  hello: { params: z.object({ protocolVersion: z.number().int() }).strict(), result: helloResultSchema },
  /** Record the desired set (what `start-metal-servers` starts). Does not start or stop anything. */
  apply: { params: z.object({ specs: z.array(serverSpecSchema).max(512) }).strict(), result: z.object({ count: z.number().int() }) },
  /** Start one server; resolves when it is ready or has failed. Idempotent for a running server with the same spec. */
  start: { params: z.object({ spec: serverSpecSchema }).strict(), result: serverStatusSchema },
  /** Stop one server (TERM, grace, KILL, confirm); idempotent. */
  /** `cause`: why the app stops it (feature stop-with-cause; default `requested`). */
  stop: { params: z.object({ id: serverIdSchema, graceMs: z.number().int().min(0).max(600_000).optional(), cause: z.enum(STOP_CAUSES).optional() }).strict(), result: serverStatusSchema },
  /** Stop every managed server; `cause` as for `stop` (feature shutdown-cause; default `requested`). */
  stopAll: { params: z.object({ graceMs: z.number().int().min(0).max(600_000).optional(), cause: z.enum(STOP_CAUSES).optional() }).strict(), result: z.array(serverStatusSchema) },
  status: { params: z.object({ ids: z.array(serverIdSchema).max(512).optional() }).strict(), result: z.array(serverStatusSchema) },
  logs: {
    params: z
      .object({
        id: serverIdSchema,
        lines: z.number().int().min(1).max(5000).default(200),
        /**
         * Agents with "log-search": only the lines containing this text (case ignored), from the rotated
         * copy and the current file (supervisor/log-search.ts searchLog): the last `lines` of them.
         */
        grep: z.string().min(1).max(200).optional(),
      })
      .strict(),
    result: z.object({
      id: serverIdSchema,
      lines: z.array(z.string()),
      logPath: z.string().nullable(),
      /** With `grep`: how many lines matched in all (`lines` holds the last of them). */
      matches: z.number().int().nonnegative().optional(),
      /** With `grep`: bytes searched; `searchedAll` false when a file was longer than the search reads (its end only). */
      searchedBytes: z.number().int().nonnegative().optional(),
      searchedAll: z.boolean().optional(),
      /**
       * The `seq` of the last log event this agent sent before the reply: the
       * lines are the file up to that event's line, so a client that follows
       * the events keeps those with a greater seq and neither loses nor
       * repeats a line. Absent from agents older than this field.
       */
      seq: z.number().int().nonnegative().optional(),
    }),
  },
  /** Scan the model roots for .gguf files and read their metadata. */
  discover: { params: z.object({}).strict(), result: z.array(ggufInfoSchema) },
  /**
   * Would a server start from this path? The checks a start makes (absolute,
   * a .gguf file inside the model roots, its real path inside them too), and
   * the file reads as GGUF, and a split set has every part. `problem` says
   * what to fix; null when the path is good. Agents with "check-model-path".
   */
  checkModelPath: {
    params: z.object({ path: boundedString(1024).min(1, "must not be empty") }).strict(),
    result: z.object({
      path: z.string(),
      problem: z.string().nullable(),
      /** With "model-shape": the model's shape when the path is good and its header has one. */
      shape: modelShapeSchema.optional(),
      /**
       * The model's summary as `discover` gives it (architecture, parameter count, quantization, trained
       * context, size), when the path is good and the file reads as a model; absent from agents before it.
       */
      summary: modelSummarySchema.optional(),
    }),
  },
  /** The host's memory and budget (agents with "host-memory"). */
  hostMemory: { params: z.object({}).strict(), result: hostMemorySchema },
  /**
   * Moves server `from`'s log files (current and rotated `.1`) to server `to`'s names (agents with
   * "rename-logs"): a model renamed in the app keeps its log history. Refused, changing nothing, when either
   * server is running (CONFLICT), when `to` already has a log (CONFLICT: nothing is overwritten), or when the
   * ids are the same (BAD_REQUEST). `moved`: the paths that now hold the log, none when `from` had no log.
   */
  renameLogs: {
    params: z.object({ from: serverIdSchema, to: serverIdSchema }).strict(),
    result: z.object({ from: serverIdSchema, to: serverIdSchema, moved: z.array(z.string()).max(2) }),
  },
  /**
   * Who holds `port` on this host now (agents with "port-holder"): the check a start makes before it
   * spawns (a bind probe on `bindAddress`, default 127.0.0.1 where model servers listen, then the
   * listener's pid and command from /proc or lsof), asked by the app before a restart onto a changed port
   * and when a port is saved. `holder`: "port 3428 is held by pid 11606 (python3)", or "port 3428 is in
   * use (holder not visible to this user)"; null when the port is free.
   */
  portHolder: {
    params: z.object({ port: portSchema, bindAddress: z.union([z.ipv4(), z.ipv6(), z.literal("localhost")], { error: "must be an IP address or 'localhost'" }).default("127.0.0.1") }).strict(),
    result: z.object({ port: z.number().int(), holder: z.string().nullable() }),
  },
  /**
   * Appends the app's note to server `id`'s log (agents with "log-note"): one line, run-header.ts appNote's
   * (`=== synapse host-agent: note from the app on ID at TIME: TEXT ===`), sent live as a log event too. In
   * the server's turn, as starts and stops are: a start asked after the note comes after it in the log.
   * NOT_FOUND when the server has no log (it never ran here). `line`: the line as written.
   */
  logNote: {
    params: z.object({ id: serverIdSchema, text: z.string().min(1).max(APP_NOTE_MAX_CHARS) }).strict(),
    result: z.object({ id: serverIdSchema, logPath: z.string(), line: z.string() }),
  },
  /** Ends the agent process (ssh session); with stopServers, stops every managed server first: `stopped` names those that ran (not those already stopped). */
  shutdown: { params: z.object({ stopServers: z.boolean() }).strict(), result: z.object({ stopped: z.array(serverIdSchema) }) },
} as const;

export type Method = keyof typeof methods;
export type Params<M extends Method> = z.input<(typeof methods)[M]["params"]>;
export type ParsedParams<M extends Method> = z.output<(typeof methods)[M]["params"]>;
export type Result<M extends Method> = z.output<(typeof methods)[M]["result"]>;

const methodNames = Object.keys(methods) as [Method, ...Method[]];

export const requestSchema = z
  .object({
    type: z.literal("request"),
    id: z.number().int().nonnegative(),
    method: z.enum(methodNames),
    params: z.unknown(),
  })
  .strict();
export type Request = z.infer<typeof requestSchema>;

export const errorCodeSchema = z.enum([
  "BAD_REQUEST", // params failed validation; `issues` says which field
  "NOT_FOUND", // unknown server id
  "CONFLICT", // port held, id already running with another spec
  "FAILED", // the operation ran and failed (server exited while loading, deadline passed)
  "UNAVAILABLE", // link down, agent shutting down
  "TIMEOUT", // a caller's deadline passed
  "INTERNAL",
]);
export type ErrorCode = z.infer<typeof errorCodeSchema>;

export const wireErrorSchema = z.object({
  code: errorCodeSchema,
  message: z.string(),
  /** Field-level problems for BAD_REQUEST: path joined by '.', and what to fix. */
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  /** Extra machine-readable data (the status of a server that failed, the pid holding a port). */
  data: z.unknown().optional(),
});
export type WireError = z.infer<typeof wireErrorSchema>;

export const replySchema = z.discriminatedUnion("ok", [
  z.object({ type: z.literal("reply"), id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.object({ type: z.literal("reply"), id: z.number().int(), ok: z.literal(false), error: wireErrorSchema }),
]);
export type Reply = z.infer<typeof replySchema>;

export const agentEventSchema = z.discriminatedUnion("kind", [
  z.object({ type: z.literal("event"), kind: z.literal("state"), at: z.string(), status: serverStatusSchema }),
  z.object({
    type: z.literal("event"),
    kind: z.literal("log"),
    at: z.string(),
    id: serverIdSchema,
    line: z.string(),
    /** Increases with every log event; seeded from the clock when the agent starts, so a later agent's lines sort after an earlier one's. */
    seq: z.number().int().nonnegative().optional(),
  }),
]);
export type AgentEvent = z.infer<typeof agentEventSchema>;

export const messageSchema = z.union([requestSchema, replySchema, agentEventSchema]);
export type Message = z.infer<typeof messageSchema>;

/** An error that crosses the wire intact: code, message, field issues, data. */
export class AgentError extends Error {
  readonly code: ErrorCode;
  readonly issues: WireError["issues"];
  readonly data: unknown;
  constructor(wire: WireError, options?: { cause?: unknown }) {
    super(wire.message, options);
    this.name = "AgentError";
    this.code = wire.code;
    this.issues = wire.issues;
    this.data = wire.data;
  }
  toWire(): WireError {
    return { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}), ...(this.data !== undefined ? { data: this.data } : {}) };
  }
}

/** Turns a zod failure into a BAD_REQUEST whose message names each field. */
export function badRequestFromZod(error: z.ZodError, prefix = ""): AgentError {
  const issues = error.issues.map((i) => ({ path: [prefix, ...i.path.map(String)].filter(Boolean).join("."), message: i.message }));
  const message = formatIssues(issues);
  return new AgentError({ code: "BAD_REQUEST", message, issues });
}

/** Validates a method's params; throws BAD_REQUEST naming the fields. */
export function parseParams<M extends Method>(method: M, params: unknown): ParsedParams<M> {
  const r = methods[method].params.safeParse(params ?? {});
  if (!r.success) throw badRequestFromZod(r.error);
  return r.data as ParsedParams<M>;
}

/**
 * What the control plane talks to, whatever the transport. `call` resolves
 * with the method's result or rejects with an AgentError (code UNAVAILABLE
 * when the link is down, TIMEOUT when the deadline passed).
 */
export interface AgentApi {
  call<M extends Method>(method: M, params: Params<M>, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Result<M>>;
  /** Every state and log event the agent emits; returns an unsubscribe function. */
  onEvent(listener: (event: AgentEvent) => void): () => void;
}
