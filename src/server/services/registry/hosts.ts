/**
 * Hosts: the machines that run llama-server, each reached through a link.
 * Every model belongs to one host; a host with models cannot be deleted.
 */
import os from "node:os";
import path from "node:path";
import type { Prisma } from "~/generated/prisma/client";
import type { Db } from "~/server/db/client";
import type { Env } from "~/server/env";
import { ServiceError } from "../errors";
import type { EventBus } from "../fleet/events";
import { parseInput } from "./input";
import { hostIdInput, hostUpdateInput, hostUpsertInput, isOtherModeField, isSshOnlyField, type HostUpdateInput, type HostUpsert, type HostUpsertInput } from "./schemas";
import { formatPortRange, inRange, tunnelRange } from "./model-ports";
import { writeTransaction, type DbOrTx, type Tx } from "./tx";
import { changeList } from "./edit-text";
import { assertReachKeptWhileRunning } from "./host-reach";

/** The name's change is the message's own ("renamed to"). */
const NAME_ONLY: ReadonlySet<string> = new Set(["name"]);

export const hostSelect = {
  id: true,
  name: true,
  linkKind: true,
  sshHost: true,
  sshPort: true,
  sshUser: true,
  sshIdentityFile: true,
  hostKeyFingerprint: true,
  hostModelsRoot: true,
  registryModelsRoot: true,
  llamaServerBin: true,
  upstreamMode: true,
  modelPorts: true,
  directAddress: true,
  memoryBudgetMiB: true,
  createdAt: true,
  updatedAt: true,
} as const satisfies Prisma.HostSelect;

export type HostView = Prisma.HostGetPayload<{ select: typeof hostSelect }>;
export type HostListItem = HostView & { modelCount: number };

export type DefaultHostEnv = Pick<Env, "USE_EXTERNAL_SERVERS" | "SYNAPSE_SSH_HOST_ALIAS" | "PRAXIS_MODEL_PATH" | "SYNAPSE_LOCAL_MODELS_ROOT" | "SYNAPSE_REGISTRY_MODELS_ROOT">;

export const LOCAL_HOST_NAME = "local";

/** What host edits may use: the event bus, at whose event the gateway reads the registry again (as a model's edit). */
export interface HostDeps {
  events?: Pick<EventBus, "append">;
}

/**
 * Records a host edit as an action event (event log, app log). Its model is
 * none (modelId null), which makes the gateway read the whole registry again:
 * from the next request on, a model is reached at the host's new address or
 * in its new mode (it waited for the snapshot's one-second age). Best
 * effort: the edit is saved whatever happens here.
 */
async function recordHostEdit(deps: HostDeps, hostId: string | null, message: string, data: Record<string, unknown>): Promise<void> {
  await deps.events?.append({ kind: "action", modelId: null, hostId, message, data: { hostEdit: data } }).catch(() => undefined);
}

function notFound(id: string): ServiceError {
  return new ServiceError("NOT_FOUND", `no host with id ${id}`, { issues: [{ path: "id", message: `no host with id ${id}` }] });
}

export async function listHosts(db: DbOrTx): Promise<HostListItem[]> {
  const rows = await db.host.findMany({ select: { ...hostSelect, _count: { select: { models: true } } }, orderBy: [{ createdAt: "asc" }, { name: "asc" }] });
  return rows.map(({ _count, ...h }) => ({ ...h, modelCount: _count.models }));
}

export async function getHost(db: DbOrTx, id: string): Promise<HostView> {
  const host = await db.host.findUnique({ where: { id }, select: hostSelect });
  if (!host) throw notFound(id);
  return host;
}

/**
 * Creates or replaces a host. With `id`: that host (NOT_FOUND if absent);
 * without: the host of that name, or a new one. Fields left out are cleared
 * (an upsert is the whole host, as the form shows it). A local host given
 * an ssh-only field (SSH_ONLY_FIELDS), or an ssh host the other upstream
 * mode's field (UPSTREAM_MODE_FIELDS), is BAD_REQUEST naming it, nothing written.
 * An edit that would move the host's link to another agent (another address,
 * port, user or key, link kind, a local host's name: host-reach.ts) while a
 * model on it runs or is wanted running is CONFLICT naming the models.
 */
export async function upsertHost(db: Db, input: HostUpsertInput, deps: HostDeps = {}): Promise<HostView> {
  const h = parseInput(hostUpsertInput, input);
  return saveHost(db, async () => h, deps);
}

/**
 * Changes some fields of the host `id`: fields left out keep their stored
 * values, null clears a nullable one. The host it would save (the stored one
 * with these fields over it) must pass hostUpsertInput's checks, else
 * BAD_REQUEST naming the field and nothing is written; NOT_FOUND for an
 * unknown id. Saved as an upsert of that host: the same conflict and port
 * range checks, the same event, nothing written when nothing changes.
 * A host that is (or becomes) local keeps none of its stored ssh-only fields
 * (SSH_ONLY_FIELDS: address, port, user, key, pinned host key, upstream mode,
 * model ports, direct address): they are cleared in the same write, and the
 * event says so. Given ones are refused, as by the upsert. Likewise an ssh
 * host keeps no stored field of the upstream mode it is not (or no longer)
 * in: modelPorts in direct mode, directAddress in tunnel mode.
 */
export async function updateHost(db: Db, input: HostUpdateInput, deps: HostDeps = {}): Promise<HostView> {
  const { id, ...patch } = parseInput(hostUpdateInput, input);
  const given = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
  return saveHost(
    db,
    async (tx) => {
      const existing = await tx.host.findUnique({ where: { id }, select: hostSelect });
      if (!existing) throw notFound(id);
      const { createdAt: _c, updatedAt: _u, ...stored } = existing;
      // A local host has no ssh settings, an ssh host none of the other upstream mode's:
      // stored ones are left out (so cleared), given ones refused.
      const local = (given.linkKind ?? stored.linkKind) === "local";
      const mode = patch.upstreamMode ?? stored.upstreamMode;
      const kept = Object.fromEntries(Object.entries(stored).filter(([k]) => (local ? !isSshOnlyField(k) : !isOtherModeField(k, mode))));
      return parseInput(hostUpsertInput, { ...kept, ...given, id });
    },
    deps,
  );
}

/**
 * The one write path of upsert and update: `resolve` gives the whole host to
 * save (read in the transaction, so an update merges with the row it writes).
 */
async function saveHost(db: Db, resolve: (tx: Tx) => Promise<HostUpsert>, deps: HostDeps): Promise<HostView> {
  let name = "";
  const conflict = () => [{ path: "name", message: `${name} is already the name of another host; choose another name` }];
  /** What changed: created, the names of the fields saved (and the name before), or null (no write, no event). */
  type Change = { created: true } | { created: false; fields: (keyof HostView)[]; from: string; before: HostView } | null;
  const { saved, change } = await writeTransaction(
    db,
    async (tx): Promise<{ saved: HostView; change: Change }> => {
      const h = await resolve(tx);
      name = h.name;
      const data = {
        name: h.name,
        linkKind: h.linkKind,
        sshHost: h.sshHost ?? null,
        sshPort: h.sshPort,
        sshUser: h.sshUser ?? null,
        sshIdentityFile: h.sshIdentityFile ?? null,
        hostKeyFingerprint: h.hostKeyFingerprint ?? null,
        hostModelsRoot: h.hostModelsRoot ?? null,
        registryModelsRoot: h.registryModelsRoot ?? null,
        llamaServerBin: h.llamaServerBin ?? null,
        upstreamMode: h.upstreamMode,
        modelPorts: h.modelPorts ?? null,
        directAddress: h.directAddress ?? null,
        memoryBudgetMiB: h.memoryBudgetMiB ?? null,
      };
      const byName = await tx.host.findUnique({ where: { name: h.name }, select: { id: true } });
      const id = h.id ?? byName?.id;
      if (id === undefined) {
        return { saved: await tx.host.create({ data, select: hostSelect }), change: { created: true } };
      }
      const existing = await tx.host.findUnique({ where: { id }, select: hostSelect });
      if (!existing) throw notFound(id);
      if (byName && byName.id !== id) throw new ServiceError("CONFLICT", `name: ${conflict()[0]!.message}`, { issues: conflict() });
      const fields = changedFields(existing, data);
      if (fields.length === 0) return { saved: existing, change: null };
      await assertReachKeptWhileRunning(tx, id, existing, data);
      await assertModelsInRange(tx, id, data);
      return { saved: await tx.host.update({ where: { id }, data, select: hostSelect }), change: { created: false, fields, from: existing.name, before: existing } };
    },
    conflict,
  );
  if (change?.created) await recordHostEdit(deps, saved.id, `host ${saved.name} added`, { change: "created" });
  else if (change) {
    const what = change.from !== saved.name ? `host ${change.from} renamed to ${saved.name}` : `host ${saved.name} updated`;
    const changes = Object.fromEntries(change.fields.map((f) => [f, { from: change.before[f], to: saved[f] }]));
    // A switch to local clears the ssh settings: said apart, so the reader sees why fields nobody named changed.
    const toLocal = change.before.linkKind !== "local" && saved.linkKind === "local";
    const cleared = toLocal ? change.fields.filter(isSshOnlyField) : [];
    const own = change.fields.filter((f) => !isSshOnlyField(f) || !toLocal);
    const text = [changeList(own, change.before, saved, NAME_ONLY), ...(cleared.length > 0 ? [`ssh settings cleared: ${changeList(cleared, change.before, saved)}`] : [])].join("; ");
    await recordHostEdit(deps, saved.id, `${what} (${text})`, { change: "updated", fields: change.fields, changes, ...(cleared.length > 0 ? { sshCleared: cleared } : {}) });
  }
  return saved;
}

/** A range (or a switch to the tunnel) that would leave a model's port outside it is refused, naming the models. */
async function assertModelsInRange(tx: DbOrTx, hostId: string, data: { name: string; linkKind: string; upstreamMode: string; modelPorts: string | null }): Promise<void> {
  const range = tunnelRange(data);
  if (!range) return;
  const outside = (await tx.model.findMany({ where: { hostId }, select: { name: true, port: true }, orderBy: { port: "asc" } })).filter((m) => !inRange(range, m.port));
  if (outside.length === 0) return;
  const message = `models on host ${data.name} use ports outside ${formatPortRange(range)}: ${outside.map((m) => `${m.name} (${m.port})`).join(", ")}; widen the range or move those models first`;
  throw ServiceError.invalid([{ path: "modelPorts", message }]);
}

/** The fields `data` would change (their names, in the form's order); none: nothing to save. */
function changedFields(existing: HostView, data: Omit<HostView, "id" | "createdAt" | "updatedAt">): (keyof HostView)[] {
  return (Object.keys(data) as (keyof typeof data)[]).filter((k) => existing[k] !== data[k]);
}

/** Deletes a host without models; CONFLICT naming how many models still use it. */
export async function deleteHost(db: Db, input: { id: string }, deps: HostDeps = {}): Promise<{ id: string }> {
  const { id } = parseInput(hostIdInput, input);
  let name = "";
  const result = await writeTransaction(db, async (tx) => {
    const host = await tx.host.findUnique({ where: { id }, select: { id: true, name: true, _count: { select: { models: true } } } });
    if (!host) throw notFound(id);
    if (host._count.models > 0) {
      const message = `host ${host.name} still has ${host._count.models} model(s); delete or move them first`;
      throw new ServiceError("CONFLICT", message, { issues: [{ path: "id", message }] });
    }
    await tx.host.delete({ where: { id } });
    name = host.name;
    return { id };
  });
  // Tied to no host (it is gone): its name and id are in the data.
  await recordHostEdit(deps, null, `host ${name} deleted`, { change: "deleted", host: name, hostId: id });
  return result;
}

function expandHome(p: string): string {
  return p === "~" ? os.homedir() : p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

/** The default host as the environment describes it (not yet saved). */
export function defaultHostData(env: DefaultHostEnv): Prisma.HostCreateInput {
  const registryRoot = env.SYNAPSE_REGISTRY_MODELS_ROOT;
  if (!env.USE_EXTERNAL_SERVERS) {
    // Beside the app: the folder as this machine sees it. In the image that is the mount
    // (SYNAPSE_LOCAL_MODELS_ROOT=/models), not PRAXIS_MODEL_PATH, which names it on the Docker host.
    // A relative path means this machine's folder.
    const localRoot = env.SYNAPSE_LOCAL_MODELS_ROOT ?? env.PRAXIS_MODEL_PATH;
    const hostRoot = localRoot ? path.resolve(expandHome(localRoot)) : null;
    return { name: LOCAL_HOST_NAME, linkKind: "local", ...(hostRoot ? { hostModelsRoot: hostRoot, registryModelsRoot: registryRoot } : {}) };
  }
  // Over ssh the host's home is not this machine's: the folder must be spelled out.
  const hostRoot = env.PRAXIS_MODEL_PATH ?? null;
  if (hostRoot !== null && !hostRoot.startsWith("/")) {
    const message = `must be an absolute path on the host when USE_EXTERNAL_SERVERS=true (got ${JSON.stringify(hostRoot)})`;
    throw new ServiceError("BAD_REQUEST", `PRAXIS_MODEL_PATH ${message}`, { issues: [{ path: "PRAXIS_MODEL_PATH", message }] });
  }
  return {
    name: env.SYNAPSE_SSH_HOST_ALIAS,
    linkKind: "ssh",
    // Address, user, key and host key come from SYNAPSE_SSH_DIR's config when the link opens.
    sshHost: env.SYNAPSE_SSH_HOST_ALIAS,
    ...(hostRoot ? { hostModelsRoot: hostRoot, registryModelsRoot: registryRoot } : {}),
  };
}

/**
 * The host models go to when none is named: created from the environment
 * when the registry has no host, else the host of the default name, else the
 * oldest. Idempotent and safe to call from several processes at once.
 */
export async function ensureDefaultHost(db: Db, env: DefaultHostEnv): Promise<HostView> {
  const data = defaultHostData(env);
  return writeTransaction(db, async (tx) => {
    const named = await tx.host.findUnique({ where: { name: data.name }, select: hostSelect });
    if (named) return named;
    const oldest = await tx.host.findFirst({ select: hostSelect, orderBy: [{ createdAt: "asc" }, { name: "asc" }] });
    if (oldest) return oldest;
    return tx.host.create({ data, select: hostSelect });
  });
}

/** The host a request names, or the only host when it names none. */
export async function resolveHostId(db: DbOrTx, hostId: string | undefined, field = "hostId"): Promise<string> {
  if (hostId !== undefined) {
    const host = await db.host.findUnique({ where: { id: hostId }, select: { id: true } });
    if (!host) throw ServiceError.invalid([{ path: field, message: `no host with id ${hostId}; pick one of the registered hosts` }]);
    return host.id;
  }
  const hosts = await db.host.findMany({ select: { id: true }, take: 2 });
  if (hosts.length === 1) return hosts[0]!.id;
  throw ServiceError.invalid([{ path: field, message: hosts.length === 0 ? "no host is registered yet; add one first" : "several hosts are registered; choose one" }]);
}
