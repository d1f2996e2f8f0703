/**
 * Container path ↔ host path, per host. The seed's registry names model files
 * as its backend container sees them (`/models/...`); the host that runs
 * llama-server knows the same folder as PRAXIS_MODEL_PATH. A host with both
 * `registryModelsRoot` and `hostModelsRoot` set maps one to the other; paths
 * outside the mapped root pass through unchanged when absolute (a model kept
 * elsewhere on the host). Paths are POSIX: the registry and the hosts are
 * Linux containers and macOS/Linux machines.
 */
import path from "node:path";
import type { Host } from "~/generated/prisma/client";
import { ServiceError } from "../errors";

export type HostPathMapping = Pick<Host, "name" | "registryModelsRoot" | "hostModelsRoot">;

const posix = path.posix;

function invalid(field: string, message: string): ServiceError {
  return ServiceError.invalid([{ path: field, message }]);
}

function hasDotDot(p: string): boolean {
  return p.split(/[\\/]/).includes("..");
}

/** Trims trailing slashes ("/models/" → "/models"), keeping "/" itself. */
function trimRoot(root: string): string {
  const t = root.replace(/\/+$/, "");
  return t === "" ? "/" : t;
}

/** The host's mapping, or null when it has none; a half-configured mapping is an error. */
export function mappingOf(host: HostPathMapping): { registryRoot: string; hostRoot: string } | null {
  const reg = host.registryModelsRoot?.trim() || null;
  const hst = host.hostModelsRoot?.trim() || null;
  if (!reg && !hst) return null;
  if (!reg || !hst) {
    const missing = reg ? "hostModelsRoot" : "registryModelsRoot";
    throw invalid(missing, `host ${host.name} sets only one side of its model folder mapping; set both registryModelsRoot and hostModelsRoot, or neither`);
  }
  for (const [field, root] of [["registryModelsRoot", reg], ["hostModelsRoot", hst]] as const) {
    if (!posix.isAbsolute(root)) throw invalid(field, `host ${host.name}: ${field} must be an absolute path (got ${JSON.stringify(root)})`);
    if (hasDotDot(root)) throw invalid(field, `host ${host.name}: ${field} must not contain '..' segments`);
  }
  return { registryRoot: trimRoot(posix.normalize(reg)), hostRoot: trimRoot(posix.normalize(hst)) };
}

/** `p` relative to `root` when inside it (or equal), else null. */
function relativeInside(p: string, root: string): string | null {
  if (p === root) return "";
  const prefix = root === "/" ? "/" : `${root}/`;
  return p.startsWith(prefix) ? p.slice(prefix.length) : null;
}

function checked(p: string, field: string): string {
  if (typeof p !== "string" || p.trim() === "") throw invalid(field, "must not be empty");
  if (p.includes("\0")) throw invalid(field, "must not contain NUL characters");
  if (hasDotDot(p)) throw invalid(field, `must not contain '..' segments (got ${JSON.stringify(p)})`);
  if (!posix.isAbsolute(p)) throw invalid(field, `must be an absolute path (got ${JSON.stringify(p)})`);
  return posix.normalize(p);
}

function translate(p: string, from: string, to: string): string {
  const rel = relativeInside(p, from);
  if (rel === null) return p;
  return rel === "" ? to : posix.join(to, rel);
}

/** The path the host's agent is given for a registry file path. */
export function toHostPath(host: HostPathMapping, filePath: string, field = "filePath"): string {
  const p = checked(filePath, field);
  const m = mappingOf(host);
  return m ? translate(p, m.registryRoot, m.hostRoot) : p;
}

/** The registry's name for a path the host reported (e.g. from discovery). */
export function toRegistryPath(host: HostPathMapping, hostPath: string, field = "path"): string {
  const p = checked(hostPath, field);
  const m = mappingOf(host);
  return m ? translate(p, m.hostRoot, m.registryRoot) : p;
}
