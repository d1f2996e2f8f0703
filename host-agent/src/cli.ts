/**
 * `host-agent` command line.
 *
 *   host-agent serve --stdio          JSON-lines protocol on stdin/stdout (the ssh link's far end)
 *   host-agent start-metal-servers    start the last applied desired set, in parallel; exit 1 if any failed
 *   host-agent stop-metal-servers     stop every managed server
 *   host-agent status [--json]        what is running, from the records and /health
 *   host-agent ping                   pong, with versions
 *
 * Configuration comes from the environment (see env.ts). The one-shot verbs
 * run an agent in this process: it re-adopts live servers from the records,
 * does its work, and exits, leaving servers running where that is the point.
 */
import { AGENT_VERSION, createHostAgent, type HostAgent } from "./agent.ts";
import { AgentConfigError, loadAgentConfig, type AgentConfig } from "./env.ts";
import { AgentError, PROTOCOL_VERSION, type ServerStatus } from "./protocol.ts";
import { errorMessage } from "./shared/error-text.ts";

const USAGE = `usage: host-agent <command>
  serve --stdio          serve the JSON-lines protocol on stdin/stdout
  start-metal-servers    start the last applied desired set (in parallel)
  stop-metal-servers     stop every managed llama-server
  status [--json]        show managed servers
  ping                   print pong and versions
`;

type Out = { write(s: string): unknown };

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd()).join("\n");
}

function seconds(fromIso: string | null, toIso: string | null): string {
  if (!fromIso || !toIso) return "";
  return `${((Date.parse(toIso) - Date.parse(fromIso)) / 1000).toFixed(2)}s`;
}

async function withAgent<T>(config: AgentConfig, fn: (agent: HostAgent) => Promise<T>): Promise<T> {
  // One-shot verbs: quiet unless asked, so the summary is what people read.
  const agent = createHostAgent({ ...config, logLevel: process.env.SYNAPSE_LOG_LEVEL ? config.logLevel : "warn" });
  try {
    await agent.ready;
    return await fn(agent);
  } finally {
    agent.close();
  }
}

async function startMetalServers(config: AgentConfig, out: Out): Promise<number> {
  return withAgent(config, async (agent) => {
    const specs = await agent.desired();
    if (specs.length === 0) {
      out.write("No servers in the desired set (the control plane pushes it with `apply`); nothing to start.\n");
      return 0;
    }
    const hello = await agent.call("hello", { protocolVersion: PROTOCOL_VERSION });
    const ls = hello.llamaServer;
    out.write(`Starting ${specs.length} llama-server(s) in parallel with ${ls.path ?? "llama-server"}${ls.version ? ` (version ${ls.version}${ls.commit ? `, ${ls.commit}` : ""})` : ""}\n`);
    if (ls.error) out.write(`  warning: ${ls.error}\n`);
    const results = await Promise.allSettled(specs.map((spec) => agent.call("start", { spec })));
    let failed = 0;
    const rows: string[][] = [];
    for (const [i, r] of results.entries()) {
      const spec = specs[i]!;
      if (r.status === "fulfilled") {
        rows.push(["  ✓", spec.id, `port ${spec.port}`, `pid ${r.value.pid ?? "?"}`, r.value.readyAt && r.value.startedAt ? `ready in ${seconds(r.value.startedAt, r.value.readyAt)}` : r.value.state]);
      } else {
        failed++;
        const err = r.reason as AgentError;
        const status = (err.data ?? null) as ServerStatus | null;
        rows.push(["  ✗", spec.id, `port ${spec.port}`, status?.pid ? `pid ${status.pid}` : "", `FAILED: ${status?.reason ?? err.message.split("\n")[0]}`]);
        for (const line of status?.logTail?.slice(-5) ?? []) rows.push(["", "", "", "", `| ${line}`]);
      }
    }
    out.write(`${table(rows)}\n`);
    out.write(`Summary: ${specs.length - failed} ready, ${failed} failed (logs: host-agent status; ${config.stateDir}/logs/)\n`);
    return failed > 0 ? 1 : 0;
  });
}

async function stopMetalServers(config: AgentConfig, out: Out): Promise<number> {
  return withAgent(config, async (agent) => {
    const started = Date.now();
    // Remembered until they are started again, so an app that connects later leaves them stopped.
    const results = await agent.supervisor.stopAllOnHost("stop-metal-servers");
    if (results.length === 0) {
      out.write("No managed llama-server is running.\n");
      return 0;
    }
    let problems = 0;
    for (const s of results) {
      const bad = /survived|still in use/.test(s.reason ?? "");
      if (bad) problems++;
      out.write(`  ${bad ? "✗" : "✓"} ${s.id}  port ${s.port ?? "?"}  ${s.reason ?? s.state}\n`);
    }
    out.write(`Stopped ${results.length - problems} of ${results.length} in ${((Date.now() - started) / 1000).toFixed(2)}s\n`);
    return problems > 0 ? 1 : 0;
  });
}

async function status(config: AgentConfig, json: boolean, out: Out): Promise<number> {
  return withAgent(config, async (agent) => {
    const live = await agent.call("status", {});
    const desired = await agent.desired().catch(() => []);
    const known = new Set(live.map((s) => s.id));
    const all: ServerStatus[] = [
      ...live,
      ...desired.filter((d) => !known.has(d.id)).map((d): ServerStatus => ({ id: d.id, state: "stopped", pid: null, port: d.port, startedAt: null, readyAt: null, exitCode: null, signal: null, reason: "in the desired set, not running", logPath: null, specHash: null, logTail: [] })),
    ].sort((a, b) => a.id.localeCompare(b.id));
    if (json) {
      out.write(`${JSON.stringify(all, null, 2)}\n`);
      return 0;
    }
    if (all.length === 0) {
      out.write("No managed servers and no desired set.\n");
      return 0;
    }
    out.write(`${table([["ID", "STATE", "PID", "PORT", "STARTED", "REASON"], ...all.map((s) => [s.id, s.state, s.pid === null ? "-" : String(s.pid), s.port === null ? "-" : String(s.port), s.startedAt ?? "-", s.reason ?? ""])])}\n`);
    return 0;
  });
}

async function ping(config: AgentConfig, out: Out): Promise<number> {
  return withAgent({ ...config }, async (agent) => {
    const h = await agent.call("hello", { protocolVersion: PROTOCOL_VERSION });
    const ls = h.llamaServer;
    out.write(`pong host-agent ${AGENT_VERSION} protocol ${h.protocolVersion} ${h.hostname} ${h.platform}/${h.arch} llama-server ${ls.version ?? "unknown"}${ls.commit ? ` (${ls.commit})` : ""}${ls.error ? ` [${ls.error}]` : ""}\n`);
    return 0;
  });
}

async function serveStdio(config: AgentConfig): Promise<number> {
  const { serveJsonLines } = await import("./serve-stdio.ts");
  let agent: HostAgent | null = null;
  const finish = () => {
    agent?.close();
    // Flush the last reply, then end: the servers keep running (a later agent re-adopts them).
    process.stdout.write("", () => process.exit(0));
  };
  agent = createHostAgent({ ...config, onShutdown: finish });
  // The peer (ssh) going away ends stdin; signals end the agent, never the servers.
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.once(sig, finish);
  await serveJsonLines(agent, process.stdin, process.stdout);
  agent.close();
  return 0;
}

export async function main(argv: string[], out: Out = process.stdout, err: Out = process.stderr): Promise<number> {
  const [command, ...rest] = argv;
  let config: AgentConfig;
  try {
    config = loadAgentConfig();
  } catch (e) {
    err.write(`host-agent: ${errorMessage(e)}\n`);
    return e instanceof AgentConfigError ? 2 : 1;
  }
  try {
    switch (command) {
      case "serve":
        if (!rest.includes("--stdio")) {
          err.write("host-agent serve: only --stdio is supported\n");
          return 2;
        }
        return await serveStdio(config);
      case "start-metal-servers":
        return await startMetalServers(config, out);
      case "stop-metal-servers":
        return await stopMetalServers(config, out);
      case "status":
        return await status(config, rest.includes("--json"), out);
      case "ping":
        return await ping(config, out);
      case "help":
      case "--help":
      case "-h":
        out.write(USAGE);
        return 0;
      default:
        err.write(`host-agent: unknown command ${JSON.stringify(command ?? "")}\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    err.write(`host-agent ${command}: ${errorMessage(e)}\n`);
    return 1;
  }
}
