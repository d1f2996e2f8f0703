/**
 * The host agent's tuning variables, read by the standalone agent
 * (host-agent/src/env.ts: the agent on a Mac reached over ssh) and by the
 * app for the agent it runs inside itself (the local host:
 * src/server/env.ts, then links.ts localAgentConfig), with one meaning and
 * one check in both places.
 */
import { z } from "zod";

/** A whole number in [min, max], from a decimal string; the message names the variable and the range. */
export const wholeNumberIn = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, { error: `${name} must be a whole number between ${min} and ${max}` })
    .transform(Number)
    .refine((n) => n >= min && n <= max, { error: `${name} must be a whole number between ${min} and ${max}` });

/** A server log is rotated (one `.1` kept) once it passes this size (bytes): 10 MiB unless set. */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** How often a ready server's /health is checked (ms). */
export const DEFAULT_HEALTH_INTERVAL_MS = 5000;

/** The variables, as zod fields of an environment object (all optional: unset means the default above). */
export const AGENT_TUNING_ENV = {
  /** Bytes, 4096 to 10 GiB. */
  SYNAPSE_LOG_MAX_BYTES: wholeNumberIn("SYNAPSE_LOG_MAX_BYTES", 4096, 10 * 1024 * 1024 * 1024).optional(),
  /** Milliseconds, 100 to one hour. */
  SYNAPSE_HEALTH_INTERVAL_MS: wholeNumberIn("SYNAPSE_HEALTH_INTERVAL_MS", 100, 3_600_000).optional(),
};
