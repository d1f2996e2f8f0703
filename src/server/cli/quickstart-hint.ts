/**
 * tsx src/server/cli/quickstart-hint.ts
 *
 * The quick start's closing hint (scripts/quickstart.sh prints it before `npm start`): what to do once the
 * app answers, from the registry as it stands. The app is not running yet, so the registry is read straight
 * from the SQLite file DATABASE_URL names (default ./data/synapse.db, as npm start resolves it), read-only,
 * waiting at most BUSY_TIMEOUT_MS for a lock; nothing is created or migrated.
 *
 *   no database, or no model in it:  Discover → Scan for models → Enable → START ALL ENABLED
 *   models:                          how many, how many enabled, how many the app stopped as it last shut
 *                                    down (or left running: it resumes those), and that START ALL ENABLED
 *                                    (or `npm run synapse -- start-all`) starts the enabled ones
 *   a file that cannot be read:      the generic hint, and why
 *
 * Prints one line on stdout; exits 0 whatever it finds (a hint never stops the quick start).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { readRegistryRows } from "../db/read-registry";
import { databaseFile } from "../env";

/** What the hint says of the registry: counts of models. */
export interface RegistryCounts {
  models: number;
  enabled: number;
  /** Enabled models with load policy on-demand: the gateway starts them at their first request, START ALL ENABLED does not. */
  enabledOnDemand: number;
  /** Models whose server the app stopped as it last shut down (ServerState.cause "shutdown"), not started since. */
  stoppedAtShutdown: number;
  /** Models wanted running (ServerState.desired "running": left running at the last shutdown): the app resumes them as it starts. */
  wantedRunning: number;
  /** Of the enabled models with load policy always, those wanted running: START ALL ENABLED has nothing to start for them. */
  wantedRunningAlways: number;
}

const NO_MODELS: RegistryCounts = { models: 0, enabled: 0, enabledOnDemand: 0, stoppedAtShutdown: 0, wantedRunning: 0, wantedRunningAlways: 0 };

export const DISCOVER_HINT = "then Discover → Scan for models → Enable → START ALL ENABLED";
const START_ALL = "START ALL ENABLED on the fleet page (or npm run synapse -- start-all)";

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/**
 * The hint for a registry with these counts: "then: the registry has 3 models, 2 enabled; 2 stopped when the
 * app last shut down: START ALL ENABLED on the fleet page (or npm run synapse -- start-all) starts the 2
 * enabled". Null counts: none could be read (`problem` says why): the hint for either case.
 */
export function quickstartHint(counts: RegistryCounts | null, problem: string | null = null): string {
  if (counts === null) return `${DISCOVER_HINT}; with models registered already, ${START_ALL} starts the enabled ones${problem ? ` (the registry could not be read: ${problem})` : ""}`;
  if (counts.models === 0) return DISCOVER_HINT;
  const state = [`the registry has ${plural(counts.models, "model", "models")}, ${counts.enabled === 0 ? "none" : counts.enabled} enabled`];
  if (counts.stoppedAtShutdown > 0) state.push(`${counts.stoppedAtShutdown} stopped when the app last shut down`);
  if (counts.wantedRunning > 0) state.push(`${plural(counts.wantedRunning, "was", "were")} left running: the app resumes ${counts.wantedRunning === 1 ? "it" : "them"}`);
  const always = counts.enabled - counts.enabledOnDemand;
  // Those left running are taken over as the app starts: START ALL ENABLED is for the rest.
  const toStart = always - Math.min(always, counts.wantedRunningAlways);
  const onDemand =
    counts.enabledOnDemand === 0 ? "" : counts.enabledOnDemand === 1 ? "; the 1 on-demand model starts at its first request" : `; the ${counts.enabledOnDemand} on-demand ones start at their first request`;
  let action: string;
  if (counts.enabled === 0) action = `turn on Enabled for the models to run (fleet page), then ${START_ALL}`;
  else if (toStart > 0) action = `${START_ALL} starts the ${toStart === always ? `${always} enabled` : `other ${toStart} enabled`}${onDemand}`;
  else if (always > 0) action = `nothing to start${onDemand}`;
  else action = `the ${counts.enabled} enabled ${counts.enabled === 1 ? "is on-demand: it starts" : "are on-demand: they start"} at the first request for ${counts.enabled === 1 ? "it" : "them"}`;
  return `then: ${state.join("; ")}: ${action}`;
}

const COUNTS_SQL = `SELECT COUNT(*) AS models, COALESCE(SUM(m."enabled"), 0) AS enabled,
  COALESCE(SUM(CASE WHEN m."enabled" = 1 AND m."loadPolicy" = 'on-demand' THEN 1 ELSE 0 END), 0) AS enabledOnDemand,
  COALESCE(SUM(CASE WHEN s."cause" = 'shutdown' AND s."desired" = 'stopped' THEN 1 ELSE 0 END), 0) AS stoppedAtShutdown,
  COALESCE(SUM(CASE WHEN s."desired" = 'running' THEN 1 ELSE 0 END), 0) AS wantedRunning,
  COALESCE(SUM(CASE WHEN s."desired" = 'running' AND m."enabled" = 1 AND m."loadPolicy" <> 'on-demand' THEN 1 ELSE 0 END), 0) AS wantedRunningAlways
  FROM "Model" m LEFT JOIN "ServerState" s ON s."modelId" = m."id"`;

/**
 * The registry's counts from the SQLite file `file` (absolute path), read-only; no file, or one never
 * migrated, holds no models. `counts` null when the file cannot be read, `problem` saying why.
 */
export function readRegistryCounts(file: string): { counts: RegistryCounts | null; problem: string | null } {
  if (!existsSync(file)) return { counts: NO_MODELS, problem: null };
  try {
    const row = readRegistryRows<Record<keyof RegistryCounts, number>>(file, COUNTS_SQL)[0]!;
    const n = (k: keyof RegistryCounts) => Number(row[k]);
    return { counts: { models: n("models"), enabled: n("enabled"), enabledOnDemand: n("enabledOnDemand"), stoppedAtShutdown: n("stoppedAtShutdown"), wantedRunning: n("wantedRunning"), wantedRunningAlways: n("wantedRunningAlways") }, problem: null };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // A database the app created but never migrated holds no registry: nothing registered yet.
    if (/no such table: Model\b/.test(message)) return { counts: NO_MODELS, problem: null };
    return { counts: null, problem: `${file}: ${message}` };
  }
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (invokedDirectly) {
  let line: string;
  try {
    const { counts, problem } = readRegistryCounts(databaseFile(process.env.DATABASE_URL || "file:./data/synapse.db"));
    line = quickstartHint(counts, problem);
  } catch (err) {
    line = quickstartHint(null, err instanceof Error ? err.message : String(err));
  }
  process.stdout.write(`${line}\n`);
}
