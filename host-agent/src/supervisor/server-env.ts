/**
 * The environment a llama-server gets: the few variables every program
 * expects (where programs and the home folder are, who the user is, the
 * locale and time zone, the temp folder), plus what the agent sets for that
 * server (LLAMA_API_KEY, which keeps the key out of `ps`; the run marker).
 * Nothing else of the agent's (or the app's) environment: not its tokens
 * (SYNAPSE_API_TOKEN), and not LLAMA_ARG_*, which llama-server reads as flags
 * the spec did not ask for.
 */

/** Inherited by name; LC_* (the locale categories) by prefix. */
const INHERITED = new Set(["PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP"]);

/**
 * @param parent the agent's environment (process.env)
 * @param own variables the agent sets for this server; they win over inherited ones
 * @returns a new object; `parent` is not changed
 */
export function serverEnvironment(parent: NodeJS.ProcessEnv, own: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value !== undefined && (INHERITED.has(name) || name.startsWith("LC_"))) env[name] = value;
  }
  return { ...env, ...own };
}
