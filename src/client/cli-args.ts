/**
 * The `synapse` command line as data: which command, which model, which
 * options; or which argument makes it wrong. No imports: the CLI runs this
 * file under tsx from any folder.
 */

export const USAGE = [
  "usage: synapse <command> [--json]",
  "  start-all [--no-wait] [--force] | stop-all | status",
  "  start <model> [--no-wait] [--force] | stop <model> | restart <model> [--no-wait] | logs <model> [--lines N] [--grep TEXT] [--follow]",
  "  <model>: a registry name or alias, as requests name it (-- before one that starts with '-')",
].join("\n");

/** The commands that act on the whole fleet, and those that take one `<model>`. */
const FLEET_COMMANDS = ["start-all", "stop-all", "status"] as const;
const MODEL_COMMANDS = ["start", "stop", "restart", "logs"] as const;
export type FleetCommand = (typeof FLEET_COMMANDS)[number];
export type ModelCommand = (typeof MODEL_COMMANDS)[number];

/** Each option and the commands that take it (--json: every command). */
const OPTION_COMMANDS = {
  "--no-wait": ["start", "restart", "start-all"],
  "--force": ["start", "start-all"],
  "--lines": ["logs"],
  "--grep": ["logs"],
  "--follow": ["logs"],
} as const satisfies Record<string, readonly (FleetCommand | ModelCommand)[]>;
type CommandOption = keyof typeof OPTION_COMMANDS;

/** servers.logs takes 1 to 5000 lines (routers/servers.ts); the CLI says so before it asks. */
export const LOG_LINES_MAX = 5000;
/** servers.logs' search is 1 to 200 characters (routers/servers.ts). */
export const LOG_GREP_MAX = 200;

export type CliArgs =
  | { kind: "help" }
  /** `problem`: the wrong argument in words ("unknown option --forse"); null when none was given at all. */
  | { kind: "usage"; problem: string | null }
  | { kind: "fleet"; command: FleetCommand; json: boolean; noWait: boolean; force: boolean }
  /** `lines`: for logs, --lines N or null (the dashboard's count); `grep`: for logs, --grep TEXT or null; `follow`: logs --follow. */
  | { kind: "model"; command: ModelCommand; model: string; json: boolean; noWait: boolean; force: boolean; lines: number | null; grep: string | null; follow: boolean };

/** The arguments after `synapse` (process.argv.slice(2)) as a command, help, or a usage error. */
export function parseArgs(argv: readonly string[]): CliArgs {
  const end = argv.indexOf("--");
  if ((end === -1 ? argv : argv.slice(0, end)).some((a) => a === "--help" || a === "-h")) return { kind: "help" };
  const positional: string[] = [];
  const given = new Set<CommandOption | "--json">();
  let linesText: string | null = null;
  let grep: string | null = null;
  let optionsEnded = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (optionsEnded || !a.startsWith("-") || a === "-") {
      positional.push(a);
      continue;
    }
    if (a === "--") optionsEnded = true;
    else if (a === "--json" || a === "--no-wait" || a === "--force" || a === "--follow") given.add(a);
    else if (a === "-f") given.add("--follow");
    else if (a === "--lines" || a.startsWith("--lines=")) {
      const value = a === "--lines" ? argv[++i] : a.slice("--lines=".length);
      if (value === undefined) return { kind: "usage", problem: `--lines needs a number: --lines N (1 to ${LOG_LINES_MAX})` };
      given.add("--lines");
      linesText = value;
    } else if (a === "--grep" || a.startsWith("--grep=")) {
      const value = a === "--grep" ? argv[++i] : a.slice("--grep=".length);
      if (value === undefined || value.trim() === "") return { kind: "usage", problem: "--grep needs the text to look for: --grep TEXT (case is ignored)" };
      if (value.length > LOG_GREP_MAX) return { kind: "usage", problem: `--grep takes at most ${LOG_GREP_MAX} characters, not ${value.length}` };
      given.add("--grep");
      grep = value.trim();
    } else return { kind: "usage", problem: `unknown option ${a}` };
  }
  const problem = usageProblem(positional, given, linesText);
  if (problem !== undefined) return { kind: "usage", problem };
  const [command, model] = positional as [FleetCommand | ModelCommand, string | undefined];
  const json = given.has("--json");
  const noWait = given.has("--no-wait");
  const force = given.has("--force");
  if (!isModelCommand(command) || model === undefined) return { kind: "fleet", command: command as FleetCommand, json, noWait, force };
  return { kind: "model", command, model, json, noWait, force, lines: linesText === null ? null : Number(linesText), grep, follow: given.has("--follow") };
}

/**
 * Which argument makes a command line wrong, in words (`start --forse` must not read as a bad command, nor
 * `stop alpha --force` as a bad model); null when no command was given; undefined when nothing is wrong.
 */
function usageProblem(positional: readonly string[], given: ReadonlySet<string>, linesText: string | null): string | null | undefined {
  const [command, ...rest] = positional;
  if (command === undefined) return null;
  const takesModel = isModelCommand(command);
  if (!takesModel && !(FLEET_COMMANDS as readonly string[]).includes(command)) return `unknown command ${command}`;
  if (takesModel && rest.length === 0) return `${command} needs a model: synapse ${command} <model> (its registry name or alias; status lists them)`;
  const extra = takesModel ? rest[1] : rest[0];
  if (extra !== undefined) return `unexpected argument ${extra}`;
  for (const [option, commands] of Object.entries(OPTION_COMMANDS) as [CommandOption, readonly string[]][]) {
    if (given.has(option) && !commands.includes(command)) return `${option} is an option of ${orList(commands)}`;
  }
  if (given.has("--follow") && given.has("--json")) return "--follow prints the log's lines as they come, not --json: leave one out";
  if (linesText !== null && !(/^\d+$/.test(linesText) && Number(linesText) >= 1 && Number(linesText) <= LOG_LINES_MAX)) {
    return `--lines takes a whole number from 1 to ${LOG_LINES_MAX}, not ${JSON.stringify(linesText)}`;
  }
  return undefined;
}

function isModelCommand(command: string): command is ModelCommand {
  return (MODEL_COMMANDS as readonly string[]).includes(command);
}

/** "logs only"; "start and start-all"; "start, restart and start-all". */
function orList(items: readonly string[]): string {
  if (items.length === 1) return `${items[0]} only`;
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}
