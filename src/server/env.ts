/**
 * The app's configuration: every environment variable it reads, validated
 * once with zod. Defaults work on a fresh machine (SQLite under ./data, port
 * 3000 on loopback, the local link). A bad value stops start-up with a message
 * naming the variable, the form it expects and the value it got (quoted and
 * bounded; a secret's length only: synapse-host-agent/env-value).
 */
import { withGotValue } from "synapse-host-agent/env-value";
import { AGENT_TUNING_ENV } from "synapse-host-agent/agent-tuning-env";
import { z } from "zod";

const bool = (name: string) =>
  z
    .enum(["true", "false", "1", "0", "yes", "no"], { error: `${name} must be true or false (or 1/0, yes/no)` })
    .transform((v) => v === "true" || v === "1" || v === "yes");

// Digits only: Number() would also take "0x50", "1e3" or " 80 " (the CLI's appUrl reads PORT the same way).
const port = (name: string) =>
  z
    .string()
    .regex(/^\d{1,5}$/, `${name} must be a port number (1-65535)`)
    .transform(Number)
    .refine((n) => n >= 1 && n <= 65535, `${name} must be a port number (1-65535)`);

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export const envSchema = z
  .object({
    NODE_ENV: z.enum(["development", "production", "test"], { error: "NODE_ENV must be development, production or test" }).default("development"),
    /** SQLite file (`file:` URL or a path). Relative paths are relative to the working folder. */
    DATABASE_URL: z
      .string()
      .default("file:./data/synapse.db")
      .refine((v) => v.startsWith("file:") || !v.includes("://"), "DATABASE_URL must be a file: URL or a path to an SQLite file"),
    /** Where the app listens. Beyond loopback, SYNAPSE_API_TOKEN is required. */
    HOSTNAME: z.string().min(1).default("127.0.0.1"),
    PORT: port("PORT").default(3000),
    /**
     * Where the app is reachable from outside, when that differs from where it
     * listens: in Docker the app listens on 0.0.0.0 inside the container but
     * compose may publish it on the host's loopback only. The token rule
     * follows this address (default: HOSTNAME).
     */
    SYNAPSE_PUBLISH_ADDRESS: z.string().min(1).optional(),
    /** Bearer token for the API; compared in constant time. */
    SYNAPSE_API_TOKEN: z.string().min(16, "SYNAPSE_API_TOKEN must be at least 16 characters").optional(),
    /** Extra Host header values (comma separated) the app answers to, e.g. a LAN name. */
    SYNAPSE_ALLOWED_HOSTS: z
      .string()
      .default("")
      .transform((v) => v.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean)),
    /** true: the default host is reached over SSH (Docker on a Mac); false: servers run beside the app. */
    USE_EXTERNAL_SERVERS: bool("USE_EXTERNAL_SERVERS").default(false),
    /**
     * The folder the app was started from: a relative path in the registry (a host's
     * sshIdentityFile, llamaServerBin) means a path under it. scripts/start.mjs sets it
     * (Next's standalone server changes its working folder to its own); unset: the working folder.
     */
    SYNAPSE_START_DIR: z.string().optional(),
    /** The seed's host-api/.ssh folder: config, id_ed25519, known_hosts. */
    SYNAPSE_SSH_DIR: z.string().default("host-api/.ssh"),
    /** SSH Host alias (from SYNAPSE_SSH_DIR/config) of the default external host. */
    SYNAPSE_SSH_HOST_ALIAS: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, "SYNAPSE_SSH_HOST_ALIAS must be a plain host alias (letters, digits, '.', '_', '-'), a Host of SYNAPSE_SSH_DIR/config")
      .default("mac-host"),
    /** The host's model folder (the seed's PRAXIS_MODEL_PATH) and the registry's name for it. */
    PRAXIS_MODEL_PATH: z.string().optional(),
    /**
     * The same folder as the app's own machine sees it, for the local host
     * (USE_EXTERNAL_SERVERS=false). Unset: PRAXIS_MODEL_PATH. The image sets
     * /models: there PRAXIS_MODEL_PATH names the folder on the Docker host,
     * which compose mounts at /models.
     */
    SYNAPSE_LOCAL_MODELS_ROOT: z.string().optional(),
    SYNAPSE_REGISTRY_MODELS_ROOT: z.string().default("/models"),
    /** Folders the local agent may serve models from (colon separated). */
    SYNAPSE_MODEL_ROOTS: z.string().optional(),
    /** Agent state folder for the local link (records, logs). */
    SYNAPSE_STATE_DIR: z.string().optional(),
    LLAMA_SERVER_BIN: z.string().optional(),
    /**
     * The local agent's tuning, as the standalone agent reads it (agent-tuning-env.ts): a server log's size
     * cap (bytes) and how often a ready server's /health is checked (ms). Hosts reached over ssh read their own.
     */
    ...AGENT_TUNING_ENV,
    /** true: on SIGTERM the app exits and leaves servers running (they are re-adopted next start). */
    SYNAPSE_LEAVE_SERVERS_RUNNING: bool("SYNAPSE_LEAVE_SERVERS_RUNNING").default(false),
    /** Reconciler tick: how often desired and observed state are compared. */
    SYNAPSE_RECONCILE_INTERVAL_MS: z
      .string()
      .regex(/^\d{1,9}$/, "SYNAPSE_RECONCILE_INTERVAL_MS must be a whole number of milliseconds between 100 and 600000")
      .transform(Number)
      .refine((n) => n >= 100 && n <= 600_000, "SYNAPSE_RECONCILE_INTERVAL_MS must be a whole number of milliseconds between 100 and 600000")
      .default(2000),
    LOG_LEVEL: z.enum(["debug", "info", "warn", "error"], { error: "LOG_LEVEL must be debug, info, warn or error" }).default("info"),
  })
  .superRefine((env, ctx) => {
    const exposed = env.SYNAPSE_PUBLISH_ADDRESS ?? env.HOSTNAME;
    if (!LOOPBACK.has(exposed) && !env.SYNAPSE_API_TOKEN) {
      const where = env.SYNAPSE_PUBLISH_ADDRESS ? `SYNAPSE_PUBLISH_ADDRESS=${exposed}` : `HOSTNAME=${exposed}`;
      // A name, not an address, in HOSTNAME is often the machine's own name: containers and some shells export
      // HOSTNAME so, and Next's server (like this app) reads it as the address to listen on.
      const machineName = !env.SYNAPSE_PUBLISH_ADDRESS && !/^[\d.]+$|:/.test(exposed);
      ctx.addIssue({
        code: "custom",
        path: ["SYNAPSE_API_TOKEN"],
        message:
          `SYNAPSE_API_TOKEN is required when ${where} (reachable beyond loopback); set a random string of 16+ characters` +
          (machineName ? `, or HOSTNAME=127.0.0.1 to serve this machine only (HOSTNAME=${exposed} may be this machine's name, which containers and some shells put in the environment)` : ""),
      });
    }
  });

export type Env = z.infer<typeof envSchema>;

export class EnvError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "EnvError";
  }
}

/**
 * Parses an environment; throws EnvError with one problem per bad variable: its name, what it accepts and
 * the value it got ("PORT must be a port number (1-65535) (got \"abc\")"; a secret's length only).
 */
export function parseEnv(source: Record<string, string | undefined>): Env {
  // Empty strings mean "unset" (docker-compose writes VAR= for blanks).
  const cleaned: Record<string, string> = Object.fromEntries(Object.entries(source).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
  const r = envSchema.safeParse(cleaned);
  if (!r.success) {
    throw new EnvError(
      r.error.issues.map((i) => {
        const name = String(i.path[0] ?? "environment");
        return withGotValue(i.message.includes(name) ? i.message : `${name}: ${i.message}`, name, cleaned[name]);
      }),
    );
  }
  return r.data;
}

let cached: Env | undefined;
/** The process's validated environment (parsed once). */
export function env(): Env {
  cached ??= parseEnv(process.env);
  return cached;
}

export function isLoopback(hostname: string): boolean {
  return LOOPBACK.has(hostname);
}

export { databaseFile } from "./db/database-file";
