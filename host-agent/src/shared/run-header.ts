/**
 * How each run's first line in a server's log begins: the line the agent writes before it spawns the server
 * (spawn-prep.ts). Lines before the last such line are an earlier run's. Here, not in the supervisor, so the
 * one-line views of a failure (error-text.ts, also in the browser) can tell the header from the server's lines.
 */
export const RUN_HEADER_PREFIX = "=== synapse host-agent: starting ";
