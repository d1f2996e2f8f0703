/**
 * `synapse`: a small typed client of the app's tRPC API, for scripts and
 * terminals.
 *
 *   npm run synapse -- start-all [--no-wait] [--force] [--json]
 *     (what does not fit in its host's memory budget is refused with its numbers; --force starts it anyway)
 *   npm run synapse -- stop-all [--json]
 *   npm run synapse -- status [--json]
 *     (each model's state and load policy, its process, why it stopped, and the gateway's use of it:
 *     requests in flight, last use, and for an on-demand model when its idle unload comes)
 *   npm run synapse -- start <model> [--no-wait] [--force] [--json]
 *   npm run synapse -- stop <model> [--json]
 *   npm run synapse -- restart <model> [--no-wait] [--json]
 *     (servers.start / stop / restart: the model's row, and for a start that did not happen why, whole:
 *     the memory plan's refusal with its numbers, a held port with its holder; a start of a running model and
 *     a stop of one not running say that nothing was done; --json: the procedure's result)
 *   npm run synapse -- logs <model> [--lines N] [--grep TEXT] [--json]
 *     (the server's last N log lines, default 500 as the model page shows, at most 5000: one per line on
 *     stdout and nothing else, for grep; --grep: the last N lines of the whole log, rotated copy included,
 *     that contain TEXT, case ignored, and on stderr how many matched; --json: servers.logs' result;
 *     --follow (-f): then each new line as the server writes it, as `tail -f` (with --grep, the matching
 *     ones), and the model's state changes on stderr, until Ctrl-C)
 *
 * <model> is a registry name or alias, found as the gateway finds a request's model (find-model.ts); one no
 * model has is a usage error (exit 2) naming the models, and nothing is asked of the fleet.
 *
 * SYNAPSE_URL and SYNAPSE_API_TOKEN select the app (appUrl: without
 * SYNAPSE_URL, http://127.0.0.1:$PORT, the app's own PORT, default 3000). Exit codes: 0 all good, 1 some server
 * failed (start, restart: neither ready nor starting, or a restart's error; stop: not stopped), 2 bad usage
 * or no such model, 3 the app could not be reached or refused the request. A stop whose host cannot be reached
 * now is recorded and made once the host is back (servers.stop's `stopPending`): the line says so, exit 0.
 */
import { createTRPCClient, httpLink, httpSubscriptionLink, splitLink, TRPCClientError } from "@trpc/client";
import { EventSource } from "eventsource";
import type { AppRouter } from "~/server/api/root";
import { errorHeadline, errorMessage } from "synapse-host-agent/error-text";
import { isAlive } from "synapse-host-agent/server-states";
// Relative, not "~/…": tsx maps "~" through the tsconfig of the working folder, and the CLI may be run by path from any folder.
import { displayState } from "../shared/display-state";
import { restartText } from "../shared/restart-text";
import { hostUnreachable, recordedForHost, recordedText, unreachableHostLine, type LinkView } from "../shared/host-reach";
import { portText } from "../components/fleet/format";
import { restartPendingNote, stopNote, stopPendingNote, type StopAnswer } from "../components/fleet/stop-note";
import { LOG_TAIL_LINES } from "../components/model/log-tail";
import { linesAfterTail } from "../components/model/log-merge";
import { toFleetEvent } from "../components/live/fleet-event";
import { findModel } from "../server/gateway/find-model";
import { startAllResponse } from "../server/http/start-all-body";
import { LOG_LINES_MAX, parseArgs, USAGE, type ModelCommand } from "./cli-args";
import { appClockSkewMs, clockSamplingFetch } from "./app-clock";
import { idleUnloadText, lastUsedText } from "./usage-columns";

type Row = {
  name: string;
  host: string;
  port: number;
  /** From the status view: the port the next start uses, when it differs from the running process's `port`. */
  pendingPort?: number | null;
  state: string;
  pid: number | null;
  error?: string | null;
  lastError?: string | null;
  uptimeMs?: number | null;
  restarts?: number;
  /** From the status view: an on-demand model that is not loaded reads "idle", one waiting its turn "queued" (as on the dashboard). */
  desired?: string | null;
  loadPolicy?: string | null;
  /** Why it is not running (STOP_CAUSES: requested, crash, idle, evicted, …). */
  cause?: string | null;
  /** From the status view: a disabled model is started by neither start-all nor a request (the gateway answers 409), though it may still run. */
  enabled?: boolean;
  /** From the status view (the gateway's counters): requests in flight, last use and idle unload time (ISO). */
  inFlight?: number;
  lastUsedAt?: string | null;
  idleUnloadAt?: string | null;
  /** From the status view: when a crashed server's restart is due (ISO), while it waits for it. */
  nextRestartAt?: string | null;
  /** From the status view: its host's link; while the host is unreachable the row's state is the last known. */
  link?: LinkView;
  /** From the status view: a Restart by hand recorded while its host could not be reached, made when it is back. */
  restartPending?: boolean | { host: string; reason: string };
  /** A stop's or restart's result whose host could not be reached (servers.stop, servers.restart): its state is the last known. */
  stopPending?: { host: string; reason: string };
};

/**
 * A row's state cell addition when its state is the last known, not what runs now: " (last known; host
 * unreachable)", with the command recorded for the host in the status view ("; stop recorded, made when it is
 * back"). A stop's or restart's own row (no link) says it from its `stopPending` / `restartPending`: the line
 * under it says what was recorded. "" for a host that is reached.
 */
function lastKnownCell(r: Row): string {
  const pendingAnswer = Boolean(r.stopPending) || (typeof r.restartPending === "object" && r.restartPending !== null);
  if (!hostUnreachable(r.link) && !pendingAnswer) return "";
  const recorded = r.link ? recordedForHost({ ...r, restartPending: r.restartPending === true }) : null;
  return ` (last known; host unreachable${recorded ? `; ${recordedText(recorded)}` : ""})`;
}

/** " (text)", or "" for no text. */
const parenthesized = (text: string) => (text ? ` (${text})` : "");


export function formatUptime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/**
 * Rows as aligned columns, one line each, ERROR last and unpadded: one line of it (errorHeadline: the reason,
 * and llama-server's own line from the log tail when it has one that says what went wrong).
 * `statusView`: the status view's columns (POLICY, UPTIME, RESTARTS, CAUSE and the gateway's usage: IN FLIGHT,
 * LAST USED, IDLE UNLOAD, relative to `now`, epoch ms of the app's clock: `status` passes the CLI's now plus
 * the skew its call measured, app-clock.ts); without it, the start/stop results' few. `errorColumn` false:
 * no ERROR column (a caller that prints the errors whole below the table). In the status view it is LAST
 * ERROR, as on the dashboard: the model's last failure, history once it is stopped (CAUSE says why).
 */
export function table(rows: Row[], statusView: boolean, now: number = Date.now(), errorColumn = true): string {
  const header = ["MODEL", "HOST", "PORT", "STATE", ...(statusView ? ["POLICY"] : []), "PID", ...(statusView ? ["UPTIME", "RESTARTS", "CAUSE", "IN FLIGHT", "LAST USED", "IDLE UNLOAD"] : []), ...(errorColumn ? [statusView ? "LAST ERROR" : "ERROR"] : [])];
  const body = rows.map((r) => [
    r.name,
    r.host,
    portText(r),
    `${r.desired !== undefined || r.loadPolicy !== undefined ? displayState(r.state, r.desired, r.loadPolicy).key : r.state}${r.enabled === false ? " (disabled)" : ""}${parenthesized(restartText(r, now))}${lastKnownCell(r)}`,
    ...(statusView ? [r.loadPolicy ?? "-"] : []),
    r.pid === null ? "-" : String(r.pid),
    ...(statusView ? [formatUptime(r.uptimeMs), String(r.restarts ?? 0), r.cause ?? "-", String(r.inFlight ?? 0), lastUsedText(r, now), idleUnloadText(r, now)] : []),
    ...(errorColumn ? [errorHeadline(r.error ?? r.lastError)] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  return [line(header), ...body.map(line)].join("\n");
}

/**
 * What `status` prints: the table, then a line for each host that cannot be reached (unreachableHostLine: since
 * when, the link's error whole, the models whose state is the last known). UPTIME of those models stopped when the
 * link was lost (the status view's uptimeMs).
 */
export function statusReport(rows: readonly Row[], now: number): string {
  const lines = [table([...rows], true, now)];
  const down = new Map<string, { link: LinkView; models: string[] }>();
  for (const r of rows) {
    if (!r.link || !hostUnreachable(r.link)) continue;
    const h = down.get(r.host) ?? { link: r.link, models: [] };
    h.models.push(r.name);
    down.set(r.host, h);
  }
  for (const [host, { link, models }] of down) {
    const since = link.unreachableSince ? new Date(link.unreachableSince) : null;
    lines.push(unreachableHostLine(host, link, models, since && !Number.isNaN(since.getTime()) ? since.toTimeString().slice(0, 8) : null));
  }
  return lines.join("\n");
}

/** A start-all result as the CLI reads it: a row, with what the memory plan said of its start. */
type StartAllRow = Row & { memory?: { verdict: string; message: string | null } | null; restartAt?: string };

/**
 * What `start-all` prints: the table, "N of M ready" (saying how many went over the memory budget by
 * --force), then each refusal and each forced start whole, with its numbers (the table shows only an
 * error's first line, and a forced start has no error at all; only the event log said so).
 */
export function startAllReport(results: readonly StartAllRow[], noWait: boolean, onDemand: readonly string[] = [], loaded: ReadonlySet<string> = new Set()): string {
  // The counts are REST start-all's (start-all-body.ts), so the two never disagree.
  const { started, alreadyRunning = 0, restarting = 0 } = startAllResponse([...results], !noWait).body;
  const forced = results.filter((r) => r.memory?.verdict === "forced");
  const notes = [
    ...(alreadyRunning > 0 ? [`${alreadyRunning} already running`] : []),
    ...(restarting > 0 ? [`${restarting} crashed and left to the restart planned for ${restarting === 1 ? "it" : "them"}`] : []),
    ...(forced.length > 0 ? [`${forced.length} started by --force over the memory budget`] : []),
  ];
  // A model left to its planned restart reads "exited (restart in 2.0 s)", as in status.
  const rows = results.map((r) => (r.restartAt ? { ...r, nextRestartAt: r.restartAt } : r));
  const lines = [results.length === 0 ? (onDemand.length > 0 ? "no enabled models with load policy always" : "no enabled models") : table(rows, false)];
  // "0 of 0 ready" would only repeat the line above.
  // --no-wait: "N of M up", the ready and the starting counted apart as the table shows them ("1 of 1 starting" read wrong for a model that was ready).
  const counts = noWait ? noWaitCounts(results, started) : `${started} of ${results.length} ready`;
  if (results.length > 0) lines.push(`${counts}${notes.length > 0 ? ` (${notes.join("; ")})` : ""}`);
  for (const r of results) {
    if (r.memory?.verdict === "refused") lines.push(`not started (memory): ${r.error}`);
    if (r.memory?.verdict === "forced") lines.push(`started by --force over the memory budget: ${r.memory.message ?? r.name}`);
  }
  // Left alone on purpose, and said so: start-all starts `always` models; each of these starts on its first request.
  // One that a request already loaded is not waiting for its first request.
  const waiting = onDemand.filter((n) => !loaded.has(n));
  const up = onDemand.filter((n) => loaded.has(n));
  if (up.length > 0) lines.push(`on demand, loaded (unloaded after its idle time): ${up.join(", ")}`);
  if (waiting.length > 0) lines.push(`on demand (each starts on its first request): ${waiting.join(", ")}`);
  return `${lines.join("\n")}\n`;
}

/**
 * What `stop-all` prints: the table and "N of M stopped", then what the table cannot say of a model (stop-note.ts:
 * a restart after a crash cancelled, a failed model recorded stopped), one line each; with nothing to stop, only
 * "nothing was running" ("0 of 0 stopped" would only repeat it, as start-all leaves out "0 of 0 ready").
 */
export function stopAllReport(results: readonly (Row & Omit<StopAnswer, keyof Row>)[]): string {
  if (results.length === 0) return "nothing was running\n";
  const stopped = results.filter((r) => r.state === "stopped").length;
  const pending = results.filter((r) => r.stopPending).length;
  const notes = results.filter((r) => r.restartCancelled || r.previousState || r.stopPending).flatMap((r) => stopPendingNote(r) ?? stopNote(r) ?? []);
  return `${[table([...results], false), `${stopped} of ${results.length} stopped${pending ? `, ${pending} recorded to stop when ${pending === 1 ? "its host is" : "their hosts are"} reachable again` : ""}`, ...notes].join("\n")}\n`;
}

/** "2 of 2 up: 1 ready, 1 starting": start-all --no-wait's results by the state each row shows (`started` = both). */
function noWaitCounts(results: readonly StartAllRow[], started: number): string {
  const ready = results.filter((r) => r.state === "ready").length;
  const parts = [...(ready > 0 ? [`${ready} ready`] : []), ...(started - ready > 0 ? [`${started - ready} starting`] : [])];
  return `${started} of ${results.length} up${parts.length > 0 ? `: ${parts.join(", ")}` : ""}`;
}

/**
 * A start, stop or restart result as the CLI reads it (servers.start, servers.stop, servers.restart): a stop's
 * `notRunning` (it found nothing to stop), `previousState` (it found the model failed or crashed and recorded
 * it stopped), `restartCancelled` (it cancelled a restart after a crash; stop-note.ts).
 */
type ModelResult = Omit<StartAllRow, "restartPending"> & { evicted?: string[]; notRunning?: boolean; previousState?: string; restartCancelled?: { dueAt: string; dueInMs: number }; disabled?: { message: string }; stopPending?: { host: string; reason: string }; restartPending?: { host: string; reason: string } };

/** Whether a start, stop or restart did what was asked: started (ready; starting counts, as for start-all), stopped, or restarted with no error. */
export function modelOutcomeOk(command: Exclude<ModelCommand, "logs">, r: ModelResult): boolean {
  // A stop its host could not take yet is recorded and made once the host is back: accepted, as a start --no-wait is.
  if (command === "stop") return r.state === "stopped" || Boolean(r.stopPending);
  // So is a restart, recorded and made once the host is back.
  if (command === "restart" && r.restartPending) return true;
  // A restart whose stop failed returns the old process, still running, with the error.
  return (r.state === "ready" || r.state === "starting") && (command === "start" || r.error === null);
}

/**
 * What `start`, `stop` and `restart` print: the model's row (MODEL HOST PORT STATE PID: start-all's
 * table without its ERROR column), then what the row cannot hold, each on its line: a refusal whole with
 * its numbers ("not started (memory): …", as start-all says it), any other error whole ("not started:
 * cannot start alpha: port 8080 is held by pid 4242 (llama-server); …"), a start over the budget by
 * --force, a start that found it already running, what a stop found (stop-note.ts: not running, failed,
 * a restart it cancelled), the models stopped to make room, and for a disabled model that the gateway will not
 * serve it until it is enabled (servers.start's `disabled`).
 */
export function modelReport(command: Exclude<ModelCommand, "logs">, r: ModelResult): string {
  // An error is printed whole on its own line below: the row has no ERROR cell to repeat its first line in.
  // A disabled model's row reads "ready (disabled)", as in status.
  const lines = [table([r.disabled ? { ...r, enabled: false } : r], false, Date.now(), false)];
  const ok = modelOutcomeOk(command, r);
  const not = { start: "not started", stop: "not stopped", restart: "not restarted" }[command];
  if (r.memory?.verdict === "refused") lines.push(`${not} (memory): ${r.error ?? r.memory.message ?? ""}`);
  else if (r.error) lines.push(`${ok ? "note" : not}: ${r.error}`);
  if (r.memory?.verdict === "forced") lines.push(`started by --force over the memory budget: ${r.memory.message ?? r.name}`);
  if (command === "start" && r.memory?.verdict === "running") lines.push(`${r.name} was already running: nothing was started`);
  const stopped = command === "stop" && ok ? (stopPendingNote(r) ?? stopNote(r)) : null;
  if (stopped) lines.push(stopped);
  const restartRecorded = command === "restart" ? restartPendingNote(r) : null;
  if (restartRecorded) lines.push(restartRecorded);
  if (r.evicted && r.evicted.length > 0) lines.push(`stopped to make room: ${r.evicted.join(", ")}`);
  // Started all the same, and not served: the gateway answers 409 until it is enabled.
  if (command !== "stop" && r.disabled) lines.push(`note: ${r.disabled.message}`);
  return `${lines.join("\n")}\n`;
}

/**
 * The app's address: SYNAPSE_URL (trailing slashes dropped); without it, the
 * app as `npm start` runs it on this machine, http://127.0.0.1:PORT with
 * the app's own PORT variable (so `PORT=3300 npm start` and the CLI in the
 * same shell agree), default 3000. HOSTNAME is not read: shells and
 * containers set it to the machine's name.
 */
export function appUrl(env: Record<string, string | undefined>): string {
  if (env.SYNAPSE_URL) return env.SYNAPSE_URL.replace(/\/+$/, "");
  const port = env.PORT !== undefined && /^\d{1,5}$/.test(env.PORT.trim()) && Number(env.PORT) >= 1 && Number(env.PORT) <= 65535 ? Number(env.PORT) : 3000;
  return `http://127.0.0.1:${port}`;
}

/**
 * Runs the command line `argv` (without `synapse`): writes to `out` (stdout) and `err` (stderr), resolves
 * with the exit code. `signal` ends a `logs --follow` (Ctrl-C when run as a command): exit 0.
 */
export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s), err: (s: string) => void = (s) => process.stderr.write(s), options: { signal?: AbortSignal } = {}): Promise<number> {
  const args = parseArgs(argv);
  if (args.kind === "help") {
    out(`${USAGE}\n`);
    return 0;
  }
  if (args.kind === "usage") {
    err(`${USAGE}\n${args.problem ? `synapse: ${args.problem}\n` : ""}`);
    return 2;
  }
  const { json, noWait, force } = args;
  const url = appUrl(process.env);
  const token = process.env.SYNAPSE_API_TOKEN;
  // The status view's times are the app's: its answers' Date header says how far its clock is from ours.
  const clock = clockSamplingFetch();
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === "subscription",
        // Server-sent events (logs --follow), from the `eventsource` package: Node 20 has no EventSource of its own.
        true: httpSubscriptionLink({ url: `${url}/api/trpc`, EventSource, eventSourceOptions: { fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, ...auth } }) } }),
        false: httpLink({
          url: `${url}/api/trpc`,
          fetch: clock.fetch,
          headers: () => ({ "content-type": "application/json", ...auth }),
        }),
      }),
    ],
  });
  try {
    if (args.kind === "model") return await modelCommand(client, args, out, err, options.signal);
    const { command } = args;
    if (command === "status") {
      const servers = await client.servers.status.query();
      // LAST USED and IDLE UNLOAD count from the app's "now" (this call's skew), so a skewed clock there does not shift them.
      const appNow = Date.now() + appClockSkewMs(clock.last());
      out(json ? `${JSON.stringify(servers, null, 2)}\n` : `${servers.length === 0 ? "no models registered: add them with Discover in the dashboard (or POST /api/trpc/models.discover: README, Using it)" : statusReport(servers, appNow)}\n`);
      return 0;
    }
    const results = command === "start-all" ? await client.servers.startAll.mutate({ wait: !noWait, ...(force ? { force: true } : {}) }) : await client.servers.stopAll.mutate();
    const good = command === "start-all" ? new Set(["ready", "starting"]) : new Set(["stopped"]);
    // A crashed model start-all left to its planned restart (restartAt) is not a failure.
    // Nor is a stop recorded for a host that cannot be reached now (stopPending): it is made once the host is back.
    const failed = results.filter((r) => !good.has(r.state) && !(command === "start-all" && "restartAt" in r && r.restartAt) && !("stopPending" in r && r.stopPending));
    // As REST start-all's `onDemand`: the enabled on-demand models it leaves for their first request.
    // From the status view (one query): each enabled on-demand model and whether a request has loaded it.
    const onDemandRows = command === "start-all" ? (await client.servers.status.query()).filter((r) => r.enabled && r.loadPolicy === "on-demand") : [];
    const onDemand = onDemandRows.map((r) => r.name);
    const loaded = new Set(onDemandRows.filter((r) => isAlive(r.state)).map((r) => r.name));
    // start-all's --json is REST start-all's body (counts, onDemand, results); stop-all's, ok and the results.
    if (json) out(`${JSON.stringify(command === "start-all" ? startAllResponse(results, !noWait, onDemand).body : { ok: failed.length === 0, results }, null, 2)}\n`);
    else if (command === "start-all") out(startAllReport(results, noWait, onDemand, loaded));
    else out(stopAllReport(results));
    return failed.length === 0 ? 0 : 1;
  } catch (e) {
    err(`${failureText(url, e, Boolean(token))}\n`);
    return 3;
  }
}

type Client = ReturnType<typeof createTRPCClient<AppRouter>>;

/**
 * start, stop, restart or logs of the model `args.model` names (registry name or alias, as the gateway
 * resolves it): the registry is read first, and a name no model has is exit 2 with the models' names, the
 * fleet not asked. Returns the exit code; a failed call throws (main: exit 3).
 */
async function modelCommand(client: Client, args: Extract<ReturnType<typeof parseArgs>, { kind: "model" }>, out: (s: string) => void, err: (s: string) => void, signal?: AbortSignal): Promise<number> {
  const models = await client.models.list.query();
  const model = findModel(models, args.model);
  if (!model) {
    const names = models.map((m) => m.name);
    err(`synapse: no model named ${JSON.stringify(args.model)}; ${names.length === 0 ? "no models are registered" : `models: ${names.join(", ")}`}\n`);
    return 2;
  }
  const { command, json, noWait, force } = args;
  if (command === "logs" && args.follow) return followLog(client, model, args, out, err, signal);
  if (command === "logs") {
    const logs = await client.servers.logs.query({ id: model.id, lines: args.lines ?? LOG_TAIL_LINES, ...(args.grep !== null ? { search: args.grep } : {}) });
    if (json) out(`${JSON.stringify(logs, null, 2)}\n`);
    else if (logs.search) {
      const s = logs.search;
      out(logs.lines.map((l) => `${l}\n`).join(""));
      // Counts on stderr: stdout stays the lines alone, for pipes.
      err(`synapse: ${s.matches} line${s.matches === 1 ? "" : "s"} of ${model.name}'s log ${s.matches === 1 ? "contains" : "contain"} ${JSON.stringify(s.text)}${s.matches > logs.lines.length ? ` (the last ${logs.lines.length} shown; --lines up to ${LOG_LINES_MAX})` : ""}${s.note ? `; ${s.note}` : s.searchedAll ? "" : "; only the end of a long log file was searched"}\n`);
    }
    else if (logs.lines.length > 0) out(logs.lines.map((l) => `${l}\n`).join(""));
    // On stderr: stdout holds log lines only.
    else err(`synapse: ${model.name} has no log lines${logs.logPath ? ` (${logs.logPath})` : " (it has not run on its host yet)"}\n`);
    return 0;
  }
  const result =
    command === "start"
      ? await client.servers.start.mutate({ id: model.id, wait: !noWait, ...(force ? { force: true } : {}) })
      : command === "stop"
        ? await client.servers.stop.mutate({ id: model.id })
        : await client.servers.restart.mutate({ id: model.id, wait: !noWait });
  out(json ? `${JSON.stringify(result, null, 2)}\n` : modelReport(command, result));
  return modelOutcomeOk(command, result) ? 0 : 1;
}

/**
 * `logs --follow`: the log's last lines, then every line the server writes (only those containing
 * `args.grep`, case ignored, when given) on stdout, and the model's state changes on stderr, until `signal`
 * aborts (exit 0); rejects with the error when the tail or the app's stream fails for good (main: exit 3,
 * the error said as every other call's is). The live stream opens first and the tail is
 * read after, so no line written between the two is lost: live lines the tail already holds (seq at or
 * below its seq) are dropped, as the model page does (log-merge.ts).
 */
async function followLog(client: Client, model: { id: string; name: string }, args: { lines: number | null; grep: string | null }, out: (s: string) => void, err: (s: string) => void, signal?: AbortSignal): Promise<number> {
  const needle = args.grep?.toLowerCase() ?? null;
  const wanted = (line: string) => needle === null || line.toLowerCase().includes(needle);
  /** Live lines that came before the tail was printed (bounded: as many as a tail holds). */
  let early: { text: string; seq: number | null }[] | null = [];
  let tailAsked = false;
  /** The stream was lost and has not come back yet (said once on stderr, and its return). */
  let lost = false;
  return new Promise<number>((resolve, reject) => {
    let done = false;
    const finish = (failure: unknown = null) => {
      if (done) return;
      done = true;
      sub.unsubscribe();
      signal?.removeEventListener("abort", onAbort);
      if (failure === null) resolve(0);
      else reject(failure);
    };
    const onAbort = () => finish();
    const sub = client.servers.events.subscribe(
      { modelIds: [model.id], logs: true },
      {
        onStarted: () => {
          // Once: a stream that reconnects resumes after its last event, and the tail is printed already.
          if (tailAsked) return;
          tailAsked = true;
          client.servers.logs.query({ id: model.id, lines: args.lines ?? LOG_TAIL_LINES, ...(args.grep !== null ? { search: args.grep } : {}) }).then(
            (logs) => {
              out(logs.lines.map((l) => `${l}\n`).join(""));
              const after = linesAfterTail(early ?? [], logs.seq);
              early = null;
              for (const l of after) if (wanted(l.text)) out(`${l.text}\n`);
            },
            (e: unknown) => finish(e),
          );
        },
        onData: (raw) => {
          const ev = toFleetEvent(raw);
          if (!ev || ev.modelId !== model.id) return;
          if (ev.kind === "log" && ev.line !== null) {
            if (early !== null) {
              if (early.push({ text: ev.line, seq: ev.seq }) > LOG_LINES_MAX) early.shift();
            } else if (wanted(ev.line)) out(`${ev.line}\n`);
          } else if (ev.kind === "state" && ev.state) {
            const why = stateDetail(ev.reason, model.name);
            err(`synapse: ${model.name} ${displayState(ev.state, null).label.toLowerCase()}${why ? ` (${why})` : ""}\n`);
          }
        },
        onError: (e) => finish(e),
        // The stream lost (the app restarted, the network dropped): EventSource reconnects by itself and the
        // app resumes after the last event it sent; said on stderr, so a quiet follow is not taken for a quiet log.
        onConnectionStateChange: (state) => {
          if (state.state === "connecting" && state.error && !lost && tailAsked) {
            lost = true;
            // fetch's words ("TypeError: terminated: other side closed"), without the JavaScript error's name.
            const why = state.error.message.replace(/^(Type|Syntax)?Error: /, "") || "no reason given";
            err(`synapse: lost the app's event stream (${why}); reconnecting…\n`);
          } else if (state.state === "pending" && lost) {
            lost = false;
            // The app resumes after the last event it sent; an app that restarted meanwhile has not kept them.
            err(`synapse: the app's event stream is back (if the app restarted meanwhile, lines written while it was down are not shown here: \`synapse logs ${model.name}\` reads them from the log)\n`);
          }
        },
      },
    );
    if (signal?.aborted) finish();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A state event's reason as `logs --follow` prints it after the model's name and state: the event's own
 * message ("alpha: failed (crashed 5 times …)", what the reason falls back to when the event has none of
 * its own) says the name and the state again, so only its words in brackets are kept.
 */
export function stateDetail(reason: string | null, name: string): string | null {
  if (reason === null || !reason.startsWith(`${name}: `)) return reason;
  const m = /^\S+(?: \((.*)\))?$/s.exec(reason.slice(name.length + 2));
  return m ? (m[1] ?? null) : reason;
}

/** What a CLI user does about a 401 (the app's message speaks of the header, which the CLI sends from SYNAPSE_API_TOKEN). */
function tokenHint(status: number, tokenSet: boolean): string {
  if (status !== 401) return "";
  return tokenSet ? "\nsynapse: SYNAPSE_API_TOKEN is set, and the app refused it: give it the app's own SYNAPSE_API_TOKEN" : "\nsynapse: the app asks for its API token: set SYNAPSE_API_TOKEN to the app's token (SYNAPSE_API_TOKEN=… npm run synapse -- …)";
}

/** The chain of an error's causes as one line: "fetch failed: connect ECONNREFUSED 127.0.0.1:3000". */
function causeChain(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e; c !== undefined && c !== null && parts.length < 4; c = c instanceof Error ? c.cause : undefined) {
    const m = errorMessage(c);
    if (m && !parts.includes(m)) parts.push(m);
  }
  return parts.join(": ");
}

/**
 * Why a call failed, as the CLI prints it: the app answered with an error (its HTTP status and message:
 * a tRPC error, or the guard's `{ error: { code, message } }` such as the 401 that asks for
 * SYNAPSE_API_TOKEN), something answered that is not JSON (not the app's API), or nothing answered at all
 * (the connection's error). tRPC wraps all of them in a TRPCClientError: only its own errors carry
 * `data.httpStatus`; an answer in JSON leaves the response in `meta`; a request that got no answer has
 * fetch's TypeError ("fetch failed", its cause the socket's error) as its cause.
 */
export function failureText(url: string, e: unknown, tokenSet = false): string {
  if (e instanceof TRPCClientError) {
    const status = (e.data as { httpStatus?: number } | undefined)?.httpStatus;
    if (status !== undefined) return `synapse: ${url} answered ${status}: ${e.message}${tokenHint(status, tokenSet)}`;
    const meta = e.meta as { response?: Response; responseJSON?: unknown } | undefined;
    if (meta?.response) {
      const body = meta.responseJSON as { error?: { message?: unknown } } | undefined;
      const message = typeof body?.error?.message === "string" ? body.error.message : e.message;
      return `synapse: ${url} answered ${meta.response.status}: ${message}${tokenHint(meta.response.status, tokenSet)}`;
    }
    if (e.cause instanceof TypeError) return `synapse: cannot reach ${url}: ${causeChain(e.cause)} (is the app running there? SYNAPSE_URL sets the address, or PORT the port on this machine)`;
    return `synapse: ${url} did not answer as the app's API does (${e.message}); is SYNAPSE_URL the app's address?`;
  }
  return `synapse: cannot reach ${url}: ${causeChain(e)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // Ctrl-C ends `logs --follow` (exit 0); any other command is over before it matters.
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  main(process.argv.slice(2), undefined, undefined, { signal: stop.signal }).then((code) => {
    // Once stdout and stderr have taken all that was written: a pipe takes 64 KiB at a time and the rest
    // waits in this process, which process.exit would drop (`logs --lines 2000 | grep` got the first 555).
    process.exitCode = code;
    process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
  });
}
