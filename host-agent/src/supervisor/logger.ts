/**
 * Structured logs for the agent: one JSON object a line on stderr, so they
 * never mix with the JSON-lines protocol on stdout and a log shipper can
 * parse them.
 */
import type { LogLevel } from "../env.ts";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function createLogger(level: LogLevel, sink: { write(s: string): unknown } = process.stderr, base: Record<string, unknown> = { component: "host-agent" }): Logger {
  const emit = (lvl: Exclude<LogLevel, "silent">, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < RANK[level]) return;
    const extra: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields ?? {})) extra[k] = v instanceof Error ? { message: v.message, name: v.name, cause: v.cause instanceof Error ? v.cause.message : v.cause } : v;
    sink.write(`${JSON.stringify({ ts: new Date().toISOString(), level: lvl, msg, ...base, ...extra })}\n`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}
