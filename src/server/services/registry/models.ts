/**
 * Models: a GGUF file on a host, served on its own port. Every check that
 * involves other rows (unique name, port free on the host, host exists) runs
 * in the same transaction as the write; a unique violation that still slips
 * through (another process) becomes CONFLICT naming the field.
 */
import type { ExtraFlag } from "synapse-host-agent/protocol";
import type { Prisma } from "~/generated/prisma/client";
import type { Db } from "~/server/db/client";
import { ServiceError, type FieldIssue } from "../errors";
import type { EventBus } from "../fleet/events";
import type { GatewayKeyEventData } from "~/server/gateway/api-key";
import { keysRenamedData, renameModelInKeys } from "./gateway-keys";
import { resolveHostId } from "./hosts";
import { parseInput } from "./input";
import { formatPortRange, inRange, outsideRangeMessage, tunnelRange } from "./model-ports";
import type { LogMove, LogMover } from "./log-move";
import type { PathCheck, PathChecker } from "./path-check";
import type { PortHolderOf } from "./port-holder";
import { toHostPath } from "./paths";
import { modelCreateInput, modelIdInput, modelListInput, modelSetEnabledInput, modelUpdateInput, type ModelCreateInput, type ModelUpdateInput } from "./schemas";
import { parseExtraFlagsColumn } from "./spec";
import { writeTransaction, type DbOrTx, type Tx } from "./tx";

export interface RegistryDeps {
  /** The port the app itself listens on: no model may take it. */
  appPort: number;
  /**
   * Checks a saved file path on its host (through its agent) before the
   * write; absent, paths are checked only against the host's path mapping.
   */
  checkPath?: PathChecker;
  /**
   * Moves a renamed model's log on its host to the new name (log-move.ts), after the rename is saved; absent,
   * the log stays under the old name.
   */
  moveLogs?: LogMover;
  /**
   * Where registry edits are recorded as action events: a rename that changes gateway keys (the gateway drops
   * its cached keys at it), and every edit of a model (the gateway reads the model again at it, so a rename, a
   * delete or a disable is served from the next request on; without an event it read the registry again only
   * when its snapshot was a second old).
   */
  events?: Pick<EventBus, "append">;
  /**
   * Whether another program holds `port` on this machine now (a bind probe on 127.0.0.1, where a model
   * server listens): discovery gives a model on the app's own (local) host no such port. Absent: only the
   * registry's ports count as taken.
   */
  localPortHeld?: (port: number) => Promise<boolean>;
  /**
   * Who holds a port on a model's host now, in the agent's words ("port 3428 is held by pid 11606 (python3)"),
   * null when it is free or cannot be known (port-holder.ts): an update that gives a model a new port or host
   * warns with it (SavedModel's `portWarning`). Absent: no probe, no warning.
   */
  portHolder?: PortHolderOf;
}

/**
 * Records a registry edit as an action event (event log, app log), which is
 * also what makes the gateway read the model again at once. `modelId` null
 * for a model that is gone (its events go with it): the gateway then reads
 * the whole registry again. Best effort: the edit is saved whatever happens
 * here, and the gateway's age check still sees it within a second.
 */
async function recordEdit(events: RegistryDeps["events"], modelId: string | null, hostId: string | null, message: string, data: Record<string, unknown>, extra: Partial<GatewayKeyEventData> = {}): Promise<void> {
  if (!events) return;
  await events.append({ kind: "action", modelId, hostId, message, data: { registryEdit: data, ...extra } }).catch(() => undefined);
}

/**
 * A model as create/update return it: with how its path was checked when a checker was given (null: the path
 * did not change), and after a rename with a log mover, where its log went (null: not renamed).
 */
export type SavedModel = ModelView & { pathCheck?: PathCheck | null; logMove?: LogMove | null; portWarning?: string | null };

/**
 * A warning for a model saved with a port another program holds now on its (local) host: "port 3428 is held by
 * pid 11606 (python3) now: alpha cannot start on it until that program lets it go; stop it, or choose another
 * port". Null when the port and host did not change, the host is reached over ssh (not probed), or the port is
 * free. Not a refusal: the other program may be gone by the next start.
 */
async function portWarningOf(db: Db, view: ModelView, fields: readonly string[], holderOf: PortHolderOf): Promise<string | null> {
  if (!fields.includes("port") && !fields.includes("hostId")) return null;
  const host = await db.host.findUnique({ where: { id: view.hostId }, select: poolHostSelect });
  if (!host) return null;
  const held = await holderOf(host, view.port);
  return held ? `${held} now: ${view.name} cannot start on it until that program lets it go; stop it, or choose another port` : null;
}

const poolHostSelect = { id: true, name: true, linkKind: true, sshHost: true, sshPort: true, sshUser: true, sshIdentityFile: true, hostKeyFingerprint: true, hostModelsRoot: true, llamaServerBin: true } as const;

/**
 * After a saved rename: the log moved to the new name on the model's host (the registry row is saved first:
 * see log-move.ts for why). A model that moved to another host too keeps its log on the old host.
 */
async function moveRenamedLog(db: Db, from: { name: string; hostId: string }, to: { name: string; hostId: string }, moveLogs: LogMover): Promise<LogMove> {
  const host = await db.host.findUnique({ where: { id: from.hostId }, select: poolHostSelect });
  if (!host) return { moved: false, note: `its log stayed under ${from.name} (its old host is gone)` };
  if (from.hostId !== to.hostId) return { moved: false, note: `its log stayed under ${from.name} on host ${host.name}, its old host` };
  return moveLogs(host, from.name, to.name);
}

/** Agent states in which a server process may exist: renaming, moving or deleting its model would orphan it. */
import { ALIVE_STATES } from "synapse-host-agent/server-states";
import { errorHeadline, formatIssues } from "synapse-host-agent/error-text";
import { changeList } from "./edit-text";

/** Said by name alone in an edit event: the name is the message's own ("renamed to"), a host id nobody reads. */
const NAME_OR_HOST: ReadonlySet<string> = new Set(["name", "hostId"]);

/** Kept for callers of the registry module; the one vocabulary lives in the host-agent package. */
export const ACTIVE_STATES = ALIVE_STATES;

export const modelSelect = {
  id: true,
  name: true,
  hostId: true,
  filePath: true,
  port: true,
  enabled: true,
  ctxSize: true,
  gpuLayers: true,
  threads: true,
  batchSize: true,
  ubatchSize: true,
  flashAttn: true,
  loadMode: true,
  parallel: true,
  alias: true,
  readinessDeadlineMs: true,
  loadPolicy: true,
  idleTimeoutMs: true,
  concurrency: true,
  queueLimit: true,
  startPriority: true,
  serverApiKeyOff: true,
  extraFlags: true,
  cacheRamMiB: true,
  architecture: true,
  parameterCount: true,
  quantization: true,
  contextLength: true,
  sizeBytes: true,
  family: true,
  source: true,
  createdAt: true,
  updatedAt: true,
  host: { select: { id: true, name: true, linkKind: true } },
  server: {
    select: {
      desired: true,
      observed: true,
      pid: true,
      port: true,
      startedAt: true,
      readyAt: true,
      stoppedAt: true,
      restarts: true,
      nextRestartAt: true,
      lastError: true,
      lastExitCode: true,
      lastSignal: true,
      gpuBackend: true,
      updatedAt: true,
    },
  },
} as const satisfies Prisma.ModelSelect;

type ModelRow = Prisma.ModelGetPayload<{ select: typeof modelSelect }>;
type ServerRow = NonNullable<ModelRow["server"]>;
/**
 * A model's server state as the API shows it: the row's columns, `lastError` as recorded (the reason, then
 * "; last log lines:" and the run's log tail: header and warnings first), and `lastErrorHeadline`, the same
 * failure as one line (errorHeadline: the reason and the log line that says what went wrong, e.g. "exited with
 * code 1 while loading; the log says: llama_model_load: error loading model: …"), null when there is no error.
 */
export type ServerView = ServerRow & { lastErrorHeadline: string | null };
/** A model as the API shows it: extra flags parsed, host name and server state (ServerView; null before its first save of a state) attached. */
export type ModelView = Omit<ModelRow, "extraFlags" | "server"> & { extraFlags: ExtraFlag[]; server: ServerView | null };

export function toModelView(row: ModelRow): ModelView {
  let extraFlags: ExtraFlag[];
  try {
    extraFlags = parseExtraFlagsColumn(row.extraFlags, row.name) as ExtraFlag[];
  } catch {
    extraFlags = []; // shown empty; resolveSpec reports the bad column when the model starts
  }
  const server = row.server && { ...row.server, lastErrorHeadline: errorHeadline(row.server.lastError) || null };
  return { ...row, extraFlags, server };
}

function notFound(id: string): ServiceError {
  return new ServiceError("NOT_FOUND", `no model with id ${id}`, { issues: [{ path: "id", message: `no model with id ${id}` }] });
}

export async function listModels(db: DbOrTx, filter: { hostId?: string; enabled?: boolean } = {}): Promise<ModelView[]> {
  const f = parseInput(modelListInput, filter);
  const rows = await db.model.findMany({
    where: { ...(f.hostId !== undefined ? { hostId: f.hostId } : {}), ...(f.enabled !== undefined ? { enabled: f.enabled } : {}) },
    select: modelSelect,
    orderBy: [{ name: "asc" }],
  });
  return rows.map(toModelView);
}

export async function getModel(db: DbOrTx, id: string): Promise<ModelView> {
  const row = await db.model.findUnique({ where: { id }, select: modelSelect });
  if (!row) throw notFound(id);
  return toModelView(row);
}

/**
 * The servers running on a host at a port other than their model's registry port (a port edited while they
 * run applies at their next start): those ports stay in use until then. [{name, port: the running one, next:
 * the registry's}], from the recorded states (ServerState.port, as the agents reported it).
 */
async function movedRunningPorts(db: DbOrTx, hostId: string): Promise<{ modelId: string; name: string; port: number; next: number }[]> {
  const rows = await db.serverState.findMany({ where: { observed: { in: [...ACTIVE_STATES] }, port: { not: null }, model: { hostId } }, select: { modelId: true, port: true, model: { select: { name: true, port: true } } } });
  return rows.filter((r) => r.port !== null && r.port !== r.model.port).map((r) => ({ modelId: r.modelId, name: r.model.name, port: r.port!, next: r.model.port }));
}

/** The lowest port from `from` upward that no model on the host uses (nor a running server of one, at its port before an edit) and that is not the app's. */
export async function freePort(db: DbOrTx, hostId: string, deps: RegistryDeps, options: { from?: number; taken?: Iterable<number> } = {}): Promise<number | null> {
  const used = new Set((await db.model.findMany({ where: { hostId }, select: { port: true } })).map((m) => m.port));
  for (const r of await movedRunningPorts(db, hostId)) used.add(r.port);
  for (const p of options.taken ?? []) used.add(p);
  used.add(deps.appPort);
  for (let p = options.from ?? 8080; p <= 65535; p++) if (!used.has(p)) return p;
  return null;
}

/**
 * Name unique, port not the app's and free on the host (ignoring `selfId`).
 * The app's port is bad input (BAD_REQUEST); a taken name or port is a CONFLICT.
 */
/**
 * CONFLICT unless the name, the alias and the port are free: the gateway
 * routes by name or alias, so no model's name or alias may be another
 * model's name or alias (one would silently shadow the other); the port is
 * per host. BAD_REQUEST for the app's own port or one outside the host's
 * model-port range.
 */
export async function assertNameAndPortFree(tx: DbOrTx, want: { name: string; alias?: string | null; hostId: string; port: number; selfId?: string }, deps: RegistryDeps): Promise<void> {
  if (want.port === deps.appPort) {
    throw ServiceError.invalid([{ path: "port", message: `${want.port} is the app's own port; choose another` }]);
  }
  const host = await tx.host.findUnique({ where: { id: want.hostId }, select: { name: true, linkKind: true, upstreamMode: true, modelPorts: true } });
  const range = host ? tunnelRange(host) : null;
  if (host && range && !inRange(range, want.port)) throw ServiceError.invalid([{ path: "port", message: outsideRangeMessage(host.name, want.port, range) }]);
  const conflicts: FieldIssue[] = [];
  const byName = await tx.model.findUnique({ where: { name: want.name }, select: { id: true } });
  if (byName && byName.id !== want.selfId) conflicts.push({ path: "name", message: `${want.name} is already taken by another model; choose another name` });
  const others = want.selfId ? { NOT: { id: want.selfId } } : {};
  const nameAsAlias = await tx.model.findFirst({ where: { alias: want.name, ...others }, select: { name: true } });
  if (nameAsAlias) conflicts.push({ path: "name", message: `${want.name} is the alias of ${nameAsAlias.name} (requests name models by name or alias); choose another name` });
  if (want.alias) {
    const aliasTaken = await tx.model.findFirst({ where: { OR: [{ name: want.alias }, { alias: want.alias }], ...others }, select: { name: true, alias: true } });
    if (aliasTaken) {
      const as = aliasTaken.name === want.alias ? "the name" : "the alias";
      conflicts.push({ path: "alias", message: `${want.alias} is already ${as} of ${aliasTaken.name} (requests name models by name or alias); choose another alias` });
    }
  }
  const byPort = await tx.model.findUnique({ where: { hostId_port: { hostId: want.hostId, port: want.port } }, select: { id: true, name: true, host: { select: { name: true } } } });
  // Another model's server still running at this port, its registry port since edited: its process holds it until it restarts.
  const running = byPort && byPort.id !== want.selfId ? undefined : (await movedRunningPorts(tx, want.hostId)).find((r) => r.port === want.port && r.modelId !== want.selfId);
  if ((byPort && byPort.id !== want.selfId) || running) {
    // With a range, a suggestion from inside it (a port outside would be refused next).
    const found = await freePort(tx, want.hostId, deps, { from: range ? range.from : want.port });
    const suggestion = found !== null && (!range || inRange(range, found)) ? found : null;
    const none = range ? `; no port in its model ports ${formatPortRange(range)} is free: widen the range` : "";
    const choose = suggestion ? `choose a free port such as ${suggestion}` : `choose a free port${none}`;
    const hostName = host?.name ?? want.hostId;
    const message = running
      ? `${want.port} is in use by the running server of ${running.name} on host ${hostName} (it moves to ${running.next} at its next start); ${choose}, or restart ${running.name} first`
      : `${want.port} is already used by ${byPort!.name} on host ${byPort!.host.name}; ${choose}`;
    conflicts.push({ path: "port", message });
  }
  if (conflicts.length) throw new ServiceError("CONFLICT", formatIssues(conflicts), { issues: conflicts });
}

function conflictIssues(fields: string[]): FieldIssue[] {
  if (fields.includes("port")) return [{ path: "port", message: "is already used by another model on this host; choose a free port" }];
  if (fields.includes("name")) return [{ path: "name", message: "is already taken by another model; choose another name" }];
  return [{ path: "", message: "conflicts with an existing model" }];
}

/** The host's path mapping must accept the file path (checked on save, not first at start). */
async function assertPathMappable(tx: Tx, hostId: string, filePath: string): Promise<void> {
  const host = await tx.host.findUniqueOrThrow({ where: { id: hostId }, select: { name: true, registryModelsRoot: true, hostModelsRoot: true } });
  toHostPath(host, filePath, "filePath");
}

/**
 * The saved path checked on its host before the write (I/O that must not
 * hold the write lock). Throws the same field error as the mapping check,
 * or the agent's refusal; resolves with the outcome.
 */
async function checkPathOnHost(db: DbOrTx, hostId: string, filePath: string, checkPath: PathChecker): Promise<PathCheck> {
  const host = await db.host.findUniqueOrThrow({
    where: { id: hostId },
    select: { id: true, name: true, linkKind: true, sshHost: true, sshPort: true, sshUser: true, sshIdentityFile: true, hostKeyFingerprint: true, hostModelsRoot: true, registryModelsRoot: true, llamaServerBin: true },
  });
  return checkPath(host, toHostPath(host, filePath, "filePath"));
}

export async function createModel(db: Db, input: ModelCreateInput, deps: RegistryDeps): Promise<SavedModel> {
  const m = parseInput(modelCreateInput, input);
  let pathCheck: PathCheck | null = null;
  if (deps.checkPath) pathCheck = await checkPathOnHost(db, await resolveHostId(db, m.hostId), m.filePath, deps.checkPath);
  const view = await writeTransaction(
    db,
    async (tx) => {
      const hostId = await resolveHostId(tx, m.hostId);
      await assertPathMappable(tx, hostId, m.filePath);
      await assertNameAndPortFree(tx, { name: m.name, alias: m.alias, hostId, port: m.port }, deps);
      const { hostId: _omit, extraFlags, ...fields } = m;
      const row = await tx.model.create({
        // What discovery records of the file, from the agent's reading of it: the page shows it, and the trained context caps the default context size.
        data: { ...fields, extraFlags: JSON.stringify(extraFlags), shape: shapeColumn(pathCheck), ...fileFacts(pathCheck), source: "manual", host: { connect: { id: hostId } }, server: { create: { desired: "stopped" } } },
        select: modelSelect,
      });
      return toModelView(row);
    },
    conflictIssues,
  );
  await recordEdit(deps.events, view.id, view.hostId, `model ${view.name} added`, { change: "created" });
  return deps.checkPath ? { ...view, pathCheck: pathCheckView(pathCheck) } : view;
}

type Editable = Omit<ModelUpdateInput, "id">;

/** The outcome a save reports: checked and why not (the shape went into the row). */
function pathCheckView(pathCheck: PathCheck | null): PathCheck | null {
  return pathCheck && { checked: pathCheck.checked, note: pathCheck.note };
}

/** The columns a saved path's file fills, as discovery fills them for a scanned file. */
type FileFacts = Pick<ModelRow, "architecture" | "parameterCount" | "quantization" | "contextLength" | "sizeBytes">;

/**
 * What the agent read of a saved path's file while checking it: its summary (architecture, parameter count,
 * quantization, trained context in tokens, size in bytes); from an agent that sends only the shape, the
 * shape's architecture and trained context; null for what it did not read (the old values described another file).
 */
function fileFacts(pathCheck: PathCheck | null): FileFacts {
  const summary = pathCheck?.summary;
  const shape = pathCheck?.shape;
  return {
    architecture: summary?.architecture ?? shape?.architecture ?? null,
    parameterCount: summary?.parameterCount ?? null,
    quantization: summary?.quantization ?? null,
    contextLength: summary?.contextLength ?? shape?.contextLength ?? null,
    sizeBytes: summary?.sizeBytes ?? null,
  };
}

/** The shape column for a saved path: what the agent read while checking it, else none (estimates say why). */
function shapeColumn(pathCheck: PathCheck | null): string | null {
  return pathCheck?.shape ? JSON.stringify(pathCheck.shape) : null;
}

export async function updateModel(db: Db, input: ModelUpdateInput, deps: RegistryDeps): Promise<SavedModel> {
  const { id, ...patch } = parseInput(modelUpdateInput, input);
  let pathCheck: PathCheck | null = null;
  if (deps.checkPath && (patch.filePath !== undefined || patch.hostId !== undefined)) {
    const before = await db.model.findUnique({ where: { id }, select: { filePath: true, hostId: true } });
    const filePath = patch.filePath ?? before?.filePath;
    const hostId = patch.hostId ?? before?.hostId;
    if (before && filePath !== undefined && hostId !== undefined && (filePath !== before.filePath || hostId !== before.hostId)) {
      pathCheck = await checkPathOnHost(db, await resolveHostId(db, hostId), filePath, deps.checkPath);
    }
  }
  const { view, renamed, edited } = await writeTransaction(
    db,
    async (tx): Promise<{ view: ModelView; renamed: { from: string; to: string; keys: { id: string; name: string }[] } | null; edited?: { from: string; fromHostId: string; fields: string[]; before: ModelView; runningPort: number | null } }> => {
      const existing = await tx.model.findUnique({ where: { id }, select: modelSelect });
      if (!existing) throw notFound(id);
      const current = toModelView(existing);
      const changed: Prisma.ModelUncheckedUpdateInput = {};
      for (const key of Object.keys(patch) as (keyof Editable)[]) {
        const next = patch[key];
        if (next === undefined) continue;
        if (key === "extraFlags") {
          const text = JSON.stringify(next);
          if (text !== existing.extraFlags) changed.extraFlags = text;
        } else if (next !== current[key]) {
          (changed as Record<string, unknown>)[key] = next;
        }
      }
      if (Object.keys(changed).length === 0) return { view: current, renamed: null };
      // Another file: the stored shape, architecture, parameter count, … described the old one.
      if (changed.filePath !== undefined || changed.hostId !== undefined) {
        changed.shape = shapeColumn(pathCheck);
        // Each listed in the edit's event only when it changes ("contextLength 8192 → 4096").
        for (const [key, value] of Object.entries(fileFacts(pathCheck)) as [keyof FileFacts, FileFacts[keyof FileFacts]][]) {
          if (value !== existing[key]) (changed as Record<string, unknown>)[key] = value;
        }
      }

      const name = (changed.name as string | undefined) ?? existing.name;
      const hostId = (changed.hostId as string | undefined) ?? existing.hostId;
      const port = (changed.port as number | undefined) ?? existing.port;
      if (changed.hostId !== undefined) await resolveHostId(tx, hostId);
      const observed = existing.server?.observed ?? "stopped";
      // "running" wanted but not yet reported (a start in flight) counts as active too.
      const active = ACTIVE_STATES.has(observed) || existing.server?.desired === "running";
      if ((changed.name !== undefined || changed.hostId !== undefined) && active) {
        const field = changed.name !== undefined ? "name" : "hostId";
        const state = ACTIVE_STATES.has(observed) ? observed : "wanted running";
        const message = `${existing.name} is ${state}; stop it first, then change its ${field === "name" ? "name" : "host"}`;
        throw new ServiceError("CONFLICT", message, { issues: [{ path: field, message }] });
      }
      if (changed.filePath !== undefined || changed.hostId !== undefined) await assertPathMappable(tx, hostId, (changed.filePath as string | undefined) ?? existing.filePath);
      if (changed.name !== undefined || changed.hostId !== undefined || changed.port !== undefined || changed.alias !== undefined) {
        const alias = changed.alias !== undefined ? (changed.alias as string | null) : existing.alias;
        await assertNameAndPortFree(tx, { name, alias, hostId, port, selfId: id }, deps);
      }
      const saved = toModelView(await tx.model.update({ where: { id }, data: changed, select: modelSelect }));
      // Keys limited to this model follow it to its new name.
      const keys = changed.name !== undefined ? await renameModelInKeys(tx, existing.name, name) : [];
      return { view: saved, renamed: keys.length > 0 ? { from: existing.name, to: name, keys } : null, edited: { from: existing.name, fromHostId: existing.hostId, fields: Object.keys(changed).filter((k) => k !== "shape"), before: current, runningPort: ACTIVE_STATES.has(observed) ? (existing.server?.port ?? null) : null } };
    },
    conflictIssues,
  );
  const wasRenamed = edited !== undefined && edited.from !== view.name;
  if (edited) {
    // One event per edit; a rename that moved gateway keys says so in it, and its key data makes the gateway drop its cached keys.
    const what = wasRenamed ? `model ${edited.from} renamed to ${view.name}` : `model ${view.name} saved`;
    const keys = renamed ? `: gateway key(s) ${renamed.keys.map((k) => `"${k.name}"`).join(", ")} now name ${view.name}` : "";
    const before = edited.before as unknown as Record<string, unknown>;
    const after = view as unknown as Record<string, unknown>;
    const changes = Object.fromEntries(edited.fields.filter((f) => !NAME_OR_HOST.has(f)).map((f) => [f, { from: before[f] ?? null, to: after[f] ?? null }]));
    // A port edited while the server runs applies at its next start (the gateway and status go on using the process's).
    const keeps = edited.fields.includes("port") && edited.runningPort !== null && edited.runningPort !== view.port ? `; its running server keeps port ${edited.runningPort} until it is restarted` : "";
    await recordEdit(deps.events, view.id, view.hostId, `${what} (${changeList(edited.fields, before, after, NAME_OR_HOST)})${keys}${keeps}`, { change: "updated", fields: edited.fields, changes, ...(wasRenamed ? { from: edited.from, to: view.name } : {}) }, renamed ? keysRenamedData(renamed.keys) : {});
  }
  // After the edit's event (the gateway reads the model again at it; the move may wait on a slow host): the log
  // follows the rename, and an event of its own says where it is.
  const before = wasRenamed ? { name: edited.from, hostId: edited.fromHostId } : null;
  const logMove = before && deps.moveLogs ? await moveRenamedLog(db, before, { name: view.name, hostId: view.hostId }, deps.moveLogs) : null;
  if (before && logMove && deps.events) {
    const message = `model ${view.name}, renamed from ${before.name}: ${logMove.note}`;
    // Best effort, as recordEdit: the rename is saved whatever happens here.
    await deps.events.append({ kind: logMove.moved ? "action" : "error", modelId: view.id, hostId: view.hostId, message, data: { logMove: { from: before.name, to: view.name, ...logMove } } }).catch(() => undefined);
  }
  const saved: SavedModel = deps.checkPath ? { ...view, pathCheck: pathCheckView(pathCheck) } : view;
  const portWarning = deps.portHolder && edited ? await portWarningOf(db, view, edited.fields, deps.portHolder) : null;
  const warned: SavedModel = deps.portHolder ? { ...saved, portWarning } : saved;
  return deps.moveLogs ? { ...warned, logMove } : warned;
}

export async function setModelEnabled(db: Db, input: { id: string; enabled: boolean }, deps: Pick<RegistryDeps, "events"> = {}): Promise<ModelView> {
  const { id, enabled } = parseInput(modelSetEnabledInput, input);
  const { view, edited } = await writeTransaction(db, async (tx) => {
    const existing = await tx.model.findUnique({ where: { id }, select: modelSelect });
    if (!existing) throw notFound(id);
    if (existing.enabled === enabled) return { view: toModelView(existing), edited: false };
    return { view: toModelView(await tx.model.update({ where: { id }, data: { enabled }, select: modelSelect })), edited: true };
  });
  if (edited) await recordEdit(deps.events, view.id, view.hostId, `model ${view.name} ${enabled ? "enabled" : "disabled"}`, { change: enabled ? "enabled" : "disabled" });
  return view;
}

/** Deletes a model with no server process; CONFLICT ("stop it first") while one may be running. */
export async function deleteModel(db: Db, input: { id: string }, deps: Pick<RegistryDeps, "events"> = {}): Promise<{ id: string; name: string }> {
  const { id } = parseInput(modelIdInput, input);
  const deleted = await writeTransaction(db, async (tx) => {
    const existing = await tx.model.findUnique({ where: { id }, select: { id: true, name: true, hostId: true, server: { select: { observed: true, desired: true } } } });
    if (!existing) throw notFound(id);
    const observed = existing.server?.observed ?? "stopped";
    if (ACTIVE_STATES.has(observed) || existing.server?.desired === "running") {
      const message = `${existing.name} is ${ACTIVE_STATES.has(observed) ? observed : "wanted running"}; stop it first`;
      throw new ServiceError("CONFLICT", message, { issues: [{ path: "id", message }] });
    }
    await tx.model.delete({ where: { id } });
    return { id, name: existing.name, hostId: existing.hostId };
  });
  // With no model id: its events went with it (the gateway reads the whole registry again at this one).
  await recordEdit(deps.events, null, deleted.hostId, `model ${deleted.name} deleted`, { change: "deleted", model: deleted.name, modelId: id });
  return { id, name: deleted.name };
}
