/**
 * Checks a spec's model path against the filesystem: the path as given must
 * name a `.gguf` file inside a configured model root, and its real path
 * (symlinks resolved) must be a regular file inside a model root too. The
 * real path need not end in `.gguf`: in the Hugging Face cache layout
 * (`models--org--name/snapshots/<rev>/x.gguf` → `../../blobs/<sha>`) it does
 * not. For a split set, every part is checked so.
 *
 * llama-server is given the path as the registry names it, not the real
 * path: it finds a split set's later parts by name next to the first (a blob
 * hash is no split name), and the name is what `ps`, the log and its own
 * `/v1/models` show. The check runs just before each spawn, so a link swapped
 * to point out of the roots before a start is refused then.
 */
import { createHash } from "node:crypto";
import { realpath as fsRealpath, stat as fsStat } from "node:fs/promises";
import path from "node:path";
import { AgentError, type ServerSpec } from "../protocol.ts";
import { parseSplitName, splitPartPath } from "../shared/split-name.ts";
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

/**
 * The real path (symlinks resolved) of one model file, after checking it as
 * the module docstring says. Throws AgentError BAD_REQUEST (issue path
 * `spec.modelPath`) saying what is wrong: not absolute, `..`, not `.gguf`,
 * missing, not a regular file, outside the roots, or resolving outside them
 * (the message names where it points).
 */
/**
 * What to do about a file outside the model roots: the roots are the agent's own setting (SYNAPSE_MODEL_ROOTS in
 * the app's environment for the local host; in scripts/ssh-wrapper.conf beside the wrapper on a host reached over
 * ssh), read when the agent starts.
 */
const ROOTS_ADVICE = "move the file under one of them, or add its folder to SYNAPSE_MODEL_ROOTS where this host's agent reads it (for the local host the app's environment, then restart the app; on an ssh host scripts/ssh-wrapper.conf, read when its agent next starts)";

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
    throw bad(`${modelPath} is outside the model roots (${modelRoots.join(", ")}); ${ROOTS_ADVICE}`);
  }
  if (!roots.some((r) => isInside(real, r))) {
    throw bad(`${modelPath} resolves to ${real}, which is outside the model roots (${modelRoots.join(", ")}); ${ROOTS_ADVICE}`);
  }
  return real;
}

/**
 * Checks the model a spec names before a spawn: the file, and when its name
 * is a split set's (`x-0000i-of-0000n.gguf`, n > 1) every part of the set, as
 * resolveModelPath does. Returns `modelPath` unchanged: what `--model` gets.
 * Throws AgentError BAD_REQUEST; for a part other than the one named, the
 * message says which part and where it points, e.g. `part 2 of 2 of the split
 * set: /m/x-00002-of-00002.gguf resolves to /elsewhere/blob, which is outside
 * the model roots (/m)`.
 */
export async function checkModelSet(modelPath: string, modelRoots: string[]): Promise<string> {
  const split = parseSplitName(modelPath);
  const parts = split && split.count > 1 ? Array.from({ length: split.count }, (_, i) => splitPartPath(split.prefix, i + 1, split.count)) : [modelPath];
  // One round of I/O for every part (this runs before every spawn).
  const checks = await Promise.allSettled(parts.map((p) => resolveModelPath(p, modelRoots)));
  // The path as named first, so its own fault is reported as it always was; then the other parts in order.
  const own = parts.indexOf(modelPath);
  const order = [own, ...parts.map((_, i) => i).filter((i) => i !== own)];
  for (const i of order) {
    const check = checks[i]!;
    if (check.status === "fulfilled") continue;
    const err = check.reason as unknown;
    if (i === own || !(err instanceof AgentError) || err.code !== "BAD_REQUEST") throw err;
    const detail = err.issues?.[0]?.message ?? err.message;
    throw new AgentError(bad(`part ${i + 1} of ${parts.length} of the split set: ${detail}`).toWire(), { cause: err });
  }
  return modelPath;
}

/** Stable hash of a spec: same spec, same hash, whatever the key order. */
export function specHash(spec: ServerSpec): string {
  const canon = (v: unknown): unknown =>
    Array.isArray(v) ? v.map(canon) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canon(x)])) : v;
  return createHash("sha256").update(JSON.stringify(canon(spec))).digest("hex").slice(0, 16);
}
