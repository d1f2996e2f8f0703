/**
 * Checks a spec's model path against the filesystem: the path as given must
 * name a `.gguf` file inside a configured model root, and its real path
 * (symlinks resolved) must be a regular file inside a model root too. The
 * real path need not end in `.gguf`: in the Hugging Face cache layout
 * (`models--org--name/snapshots/<rev>/x.gguf` → `../../blobs/<sha>`) it does
 * not. Returns the real path, which is what the server is given, so a
 * symlink swapped later cannot redirect it.
 */
import { createHash } from "node:crypto";
import { realpath as fsRealpath, stat as fsStat } from "node:fs/promises";
import path from "node:path";
import { AgentError, type ServerSpec } from "../protocol.ts";
import { singleFlight } from "./single-flight.ts";

// Starts checked together share their lookups of the same path (see singleFlight).
const realpath = singleFlight((p: string) => p, (p: string) => fsRealpath(p));
const stat = singleFlight((p: string) => p, (p: string) => fsStat(p));

function bad(message: string): AgentError {
  return new AgentError({ code: "BAD_REQUEST", message: `spec.modelPath: ${message}`, issues: [{ path: "spec.modelPath", message }] });
}

export function isInside(child: string, root: string): boolean {
  const rel = path.relative(root, child);
  return rel === "" ? false : !rel.startsWith("..") && !path.isAbsolute(rel);
}

export async function resolveModelPath(modelPath: string, modelRoots: string[]): Promise<string> {
  if (!path.isAbsolute(modelPath)) throw bad(`must be an absolute path (got ${JSON.stringify(modelPath)})`);
  if (modelPath.split(/[\\/]/).includes("..")) throw bad("must not contain '..' segments");
  if (!modelPath.toLowerCase().endsWith(".gguf")) throw bad(`must name a .gguf file (got ${JSON.stringify(path.basename(modelPath))})`);
  // The file, its target and the roots in one round of I/O (this runs before every spawn).
  const [resolved, target, roots] = await Promise.all([
    realpath(modelPath).then((real) => ({ real, error: null }), (error: NodeJS.ErrnoException) => ({ real: null, error })),
    stat(modelPath).catch(() => null),
    Promise.all(modelRoots.map((r) => realpath(r).catch(() => path.resolve(r)))),
  ]);
  if (resolved.real === null) {
    const code = resolved.error.code;
    const e = bad(code === "ENOENT" ? `${modelPath} does not exist` : `${modelPath} cannot be resolved (${code ?? "error"})`);
    throw new AgentError(e.toWire(), { cause: resolved.error });
  }
  const real = resolved.real;
  // stat follows links, so this is the resolved file's type.
  if (!target?.isFile()) throw bad(`${modelPath} is not a regular file`);
  // As given: lexically under a root as configured or as resolved (a root may itself be a symlink).
  const given = path.resolve(modelPath);
  if (!modelRoots.some((r, i) => isInside(given, path.resolve(r)) || isInside(given, roots[i]!))) {
    throw bad(`${modelPath} is outside the model roots (${modelRoots.join(", ")})`);
  }
  if (!roots.some((r) => isInside(real, r))) {
    throw bad(`${modelPath} resolves to ${real}, which is outside the model roots (${modelRoots.join(", ")})`);
  }
  return real;
}

/** Stable hash of a spec: same spec, same hash, whatever the key order. */
export function specHash(spec: ServerSpec): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canon(x)])) : v;
  return createHash("sha256").update(JSON.stringify(canon(spec))).digest("hex").slice(0, 16);
}
