/**
 * The exact llama-server command line a host's agent will run for a model:
 * the same spec resolution and argv builder the agent uses, for the flags
 * the host's llama-server understands (asked through its link). Shown on the
 * model page so what runs is never a guess.
 */
import { isAlive, PROTOCOL_VERSION, type LlamaServerInfo, type ServerStatus } from "synapse-host-agent/protocol";
import { buildLaunch, specHash } from "synapse-host-agent/supervisor";
import type { AppRuntime } from "~/server/runtime";
import { getSettings, resolveSpec } from "./registry";
import { serverApiKeyOf, specForAgent } from "./registry/spec";
import { contextAboveTrainedNote, contextCapNote, contextSize } from "./memory/context-size";
import { ServiceError } from "./errors";
import { errorMessage } from "synapse-host-agent/error-text";
import { shellCommand } from "synapse-host-agent/shell-quote";

export interface CommandPreview {
  /** The binary the agent found on the host, or "llama-server" when it could not ask. */
  binary: string;
  args: string[];
  /** One line, quoted for a POSIX shell, for copying into a terminal. */
  commandLine: string;
  /** Names of environment variables set for the server (values stay hidden: the API key travels here). */
  envNames: string[];
  llamaServer: Pick<LlamaServerInfo, "version" | "loadFlags" | "error"> | null;
  /** Why the preview assumed the newest flag set, when the host could not be asked. */
  note: string | null;
  /** Why `--ctx-size` is below the global default (the model's trained context is smaller), or null. */
  contextNote: string | null;
  /** A model's own context size above its trained context (contextAboveTrainedNote); null otherwise. */
  contextWarning: string | null;
  /**
   * The server's process while one runs (as its agent reports it), else null. `upToDate`: it was started with
   * exactly the spec `args` come from; false: a saved change is not applied yet, `args` are what the next
   * start runs (restart to apply). `args`: the arguments the process was started with (after the binary);
   * null when its agent does not report them (older than "running-argv").
   */
  running: { pid: number; upToDate: boolean; args: string[] | null } | null;
}

export async function commandPreview(runtime: Pick<AppRuntime, "db" | "links">, modelId: string): Promise<CommandPreview> {
  const model = await runtime.db.model.findUnique({ where: { id: modelId }, include: { host: true } });
  if (!model) throw new ServiceError("NOT_FOUND", `no model with id ${modelId}`, { issues: [{ path: "id", message: "no such model" }] });
  const settings = await getSettings(runtime.db);
  let spec = resolveSpec(model, model.host, settings, { apiKey: serverApiKeyOf(model) });
  let info: LlamaServerInfo | null = null;
  let note: string | null = null;
  let status: ServerStatus | null = null;
  try {
    const link = await runtime.links.get(model.host);
    const hello = await link.call("hello", { protocolVersion: PROTOCOL_VERSION }, { timeoutMs: 5_000 });
    info = hello.llamaServer;
    // As the start fits it to this agent (an agent older than "threads-auto" is given a thread count).
    spec = specForAgent(spec, hello.features ?? [], model.host.name).spec;
    if (info.error) note = `the host's llama-server could not be inspected (${info.error}); flags shown for current llama.cpp releases`;
    // What runs now, apart: a status that cannot be had leaves the preview as it is, without `running`.
    status = await link.call("status", { ids: [spec.id] }, { timeoutMs: 5_000 }).then(
      (statuses) => statuses[0] ?? null,
      () => null,
    );
  } catch (err) {
    note = `host ${model.host.name} could not be asked which llama-server it has (${errorMessage(err)}); flags shown for current llama.cpp releases`;
  }
  // --model gets the path as the registry names it, as the agent gives it (checkModelSet returns it unchanged).
  const launch = buildLaunch(spec, spec.modelPath, { loadFlags: info?.loadFlags ?? "load-mode", flashAttn: info?.flashAttn ?? "value", ...(info?.fit ? { fit: true as const } : {}) });
  const binary = info?.path ?? "llama-server";
  return {
    binary,
    args: launch.args,
    commandLine: shellCommand([binary, ...launch.args]),
    envNames: Object.keys(launch.env),
    llamaServer: info ? { version: info.version, loadFlags: info.loadFlags, error: info.error } : null,
    note,
    contextNote: contextCapNote(contextSize(model, settings)),
    contextWarning: contextAboveTrainedNote(model),
    // The agent hashes the spec it was given; the same hash of this one: the process runs these arguments.
    running: status && isAlive(status.state) && status.pid !== null ? { pid: status.pid, upToDate: status.specHash === specHash(spec), args: status.argv ?? null } : null,
  };
}
