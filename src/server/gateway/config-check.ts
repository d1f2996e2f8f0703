/**
 * The app's configuration check (parseEnv, src/server/env.ts: the one
 * boot.ts runs as the app starts) as a program, for scripts/start.mjs to run
 * before it builds the app, takes HOSTNAME:PORT or loads Next:
 *
 *   node dist/gateway/config-check.mjs     (environment: the app's)
 *
 * Exit 0: the configuration is valid; stdout holds what start-up should
 * say of it, one JSON object a line, `{ level, msg, ...fields }` (start.mjs
 * logs each as its own line): today the Host allowlist when the app is
 * reachable beyond loopback (http/host-allowlist-note.ts), a warning when
 * SYNAPSE_ALLOWED_HOSTS is unset. Exit CONFIG_INVALID_EXIT (2): stderr is
 * the check's message, e.g.
 * "invalid configuration:\n  - SYNAPSE_API_TOKEN is required when HOSTNAME=0.0.0.0 …".
 * Any other exit: the check itself failed.
 *
 * A process of its own, not an import into start.mjs: zod (about 4.5 MB of
 * heap and 80 ms to load) would stay in the app's process for a check made
 * once; the app has its own copy inside Next's build. Bundled by
 * scripts/build-gateway.mjs.
 */
import { EnvError, parseEnv, type Env } from "~/server/env";
import { hostAllowlistNote, machineNames } from "~/server/http/host-allowlist-note";

/** The exit code for an invalid configuration (1 is Node's own for an uncaught error). */
export const CONFIG_INVALID_EXIT = 2;

let env: Env | null = null;
try {
  env = parseEnv(process.env);
} catch (err) {
  if (!(err instanceof EnvError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exitCode = CONFIG_INVALID_EXIT;
}
if (env) {
  const note = hostAllowlistNote(env, machineNames());
  if (note) process.stdout.write(`${JSON.stringify({ level: note.level, msg: note.message, acceptedHosts: note.acceptedHosts })}\n`);
}
