/**
 * The host agent's configuration, validated once. `loadAgentConfig(env)`
 * takes the environment as an argument so tests build configs without
 * touching process.env; a bad value throws naming the variable, the form
 * it expects and the value it got (shared/env-value.ts).
 */
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import { withGotValue } from "./shared/env-value.ts";
import { AGENT_TUNING_ENV, DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_LOG_MAX_BYTES } from "./shared/agent-tuning-env.ts";

const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

function expandHome(p: string): string {
  return p === "~" ? os.homedir() : p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

const absolutePath = (name: string) =>
  z
    .string()
    .transform((v) => expandHome(v.trim()))
    .refine((v) => v.length > 0 && path.isAbsolute(v), { error: `${name} must be an absolute path (or start with ~/)` })
    .transform((v) => path.resolve(v));

const envSchema = z.object({
  LLAMA_SERVER_BIN: absolutePath("LLAMA_SERVER_BIN").optional(),
  SYNAPSE_STATE_DIR: absolutePath("SYNAPSE_STATE_DIR").optional(),
  XDG_STATE_HOME: z.string().optional(),
  SYNAPSE_MODEL_ROOTS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const raw = (v ?? "").split(":").map((s) => s.trim()).filter(Boolean);
      if (v !== undefined && v.trim() !== "" && raw.length === 0) raw.push("");
      const roots = (raw.length > 0 ? raw : ["~/models"]).map(expandHome);
      for (const r of roots) {
        if (!path.isAbsolute(r)) {
          ctx.addIssue({ code: "custom", message: `SYNAPSE_MODEL_ROOTS must be absolute paths separated by ':' (got ${JSON.stringify(r)})` });
          return z.NEVER;
        }
      }
      return roots.map((r) => path.resolve(r));
    }),
  ...AGENT_TUNING_ENV,
  SYNAPSE_LOG_LEVEL: z.enum(LOG_LEVELS, { error: `SYNAPSE_LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}` }).optional(),
});

export interface AgentConfig {
  /** Explicit llama-server binary; when null the agent searches PATH, /opt/homebrew/bin, /usr/local/bin, then `npm run llama:build`'s cache (supervisor/binary.ts). */
  llamaServerBin: string | null;
  stateDir: string;
  modelRoots: string[];
  /** A server log is rotated (one `.1` kept) once it passes this size. */
  logMaxBytes: number;
  /** How often a ready server's /health is checked. */
  healthIntervalMs: number;
  logLevel: LogLevel;
}

export { DEFAULT_HEALTH_INTERVAL_MS, DEFAULT_LOG_MAX_BYTES };

/**
 * The supervisor's fixed timings, in one place (milliseconds unless named
 * otherwise). Per-server values (readiness deadline, stop grace) come with
 * each server's spec; these are the agent's own.
 */
export const AGENT_DEFAULTS = {
  /** Shortest gap between two readiness probes woken by log hints (no more often than a script polling every 5 ms). */
  hintGapMs: 5,
  /** How long new log lines of a running server wait to go out as one batch of log events. */
  logFollowMs: 100,
  /** How often a log's size cap is checked when no write woke the follower. */
  logCapCheckMs: 1000,
  /**
   * Once a server runs: how long its log's watch stays closed after it reports a write (the size is checked when
   * it opens again). llama-server writes each log line on its own, 10-14 per completion (its own answer's and
   * every request's), and each reported write woke the event loop the app's fleet and gateway bridge share with a
   * local agent: an strace of the app at c=1 (bench/gateway-app.ts) counted ~1100 watch reads a second, and its
   * main thread spent ~1.3 ms of CPU per completion. Closed for this long, a busy log wakes it at most 40 times
   * a second, and a flood of 20 MB/s passes its cap by at most ~0.5 MB before the check.
   */
  logWatchPauseMs: 25,
  /** How long after passing its cap a log is rotated (a burst of lines ends in one file). */
  logRotateDelayMs: 250,
  /** Past its cap by this much, a log is rotated at once (bytes). */
  logCapSlackBytes: 256 * 1024,
  /** How long after "ready" the record gets its readyAt (out of the way of servers still loading). */
  readyRecordDelayMs: 1000,
  /** How long past its grace another agent's stop request in a record still explains an exit. */
  stopRequestSlackMs: 30_000,
  /** How long a spawned server's bookkeeping waits for other starts to spawn. */
  spawnSettleMs: 15,
  /** Upper bound of the periodic health probe's timeout (the interval, when shorter). */
  healthTimeoutMaxMs: 2000,
  /** Grace given to what a crashed server (or one that died unwatched) left behind. */
  leftoverGraceMs: 1000,
  /** How long a stop waits for its own child's exit status once the group is gone. */
  exitStatusWaitMs: 1000,
  /** How often an adopted server's pid is checked for exit. */
  exitPollMs: 50,
  /** Timeout of the health probe made when a server is adopted. */
  adoptProbeTimeoutMs: 2000,
  /** How often the process table is scanned for running servers' descendants (Linux: /proc, ~1-5 ms). */
  treeScanMs: 1000,
  /** The same where a scan runs `ps` (macOS): a process each time. */
  treeScanPsMs: 5000,
  /**
   * How long after a stop's SIGTERM a server still there gets a second one
   * (terminate.ts says why: llama-server then exits at once instead of
   * waiting for its clients). Only when the stop's grace is longer.
   */
  termRepeatMs: 2000,
  /** How long SIGKILLed processes may take to disappear. */
  killDeadlineMs: 5000,
  /** How long a stopped server's port may take to be free before its holder is reported. */
  portFreeDeadlineMs: 2000,
  /** Lines of log attached to a failure. */
  logTailLines: 20,
  /** Live log lines a server may send as events per second, sustained (the rest are counted, see live-log-gate.ts). */
  liveLogLinesPerSecond: 200,
  /** Live log lines a server may send at once after a quiet spell (llama-server prints ~300 lines as it loads). */
  liveLogBurstLines: 1000,
  /** How long the spawn helper (launcher.ts) may take to answer one spawn request. */
  spawnHelperTimeoutMs: 10_000,
} as const;

export class AgentConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AgentConfigError";
  }
}

export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  // Empty strings mean "unset": `FOO= host-agent` should not be an error.
  const cleaned: Record<string, string> = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ""));
  const r = envSchema.safeParse(cleaned);
  if (!r.success) {
    const message = r.error.issues
      .map((i) => {
        const name = String(i.path[0] ?? "");
        return withGotValue(i.message.includes(name) ? i.message : `${name}: ${i.message}`, name, cleaned[name]);
      })
      .join("; ");
    throw new AgentConfigError(`invalid host agent environment: ${message}`, { cause: r.error });
  }
  const e = r.data;
  const stateHome = e.XDG_STATE_HOME && path.isAbsolute(e.XDG_STATE_HOME) ? e.XDG_STATE_HOME : path.join(os.homedir(), ".local", "state");
  return {
    llamaServerBin: e.LLAMA_SERVER_BIN ?? null,
    stateDir: e.SYNAPSE_STATE_DIR ?? path.join(stateHome, "synapse"),
    modelRoots: e.SYNAPSE_MODEL_ROOTS,
    logMaxBytes: e.SYNAPSE_LOG_MAX_BYTES ?? DEFAULT_LOG_MAX_BYTES,
    healthIntervalMs: e.SYNAPSE_HEALTH_INTERVAL_MS ?? DEFAULT_HEALTH_INTERVAL_MS,
    logLevel: e.SYNAPSE_LOG_LEVEL ?? "info",
  };
}
