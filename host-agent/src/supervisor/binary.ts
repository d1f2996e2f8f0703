/**
 * Finding llama-server and learning what its flags are. Flags changed across
 * llama.cpp releases (`--no-mmap`/`--mlock` became `--load-mode`; `-fa` took
 * a value), so the agent asks the installed binary once (`--version`,
 * `--help`) and builds argv for it. Answers are cached per binary file.
 */
import { execFile } from "node:child_process";
import { access, constants, readdir, stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { LlamaServerInfo } from "../protocol.ts";
import { llamaInstallHint } from "../shared/llama-install.ts";
import { singleFlight } from "./single-flight.ts";
import { errorMessage } from "../shared/error-text.ts";

export interface LlamaServerCapabilities {
  loadFlags: "load-mode" | "legacy";
  /** "value": `--flash-attn on|off|auto`; "bare": old `-fa` switch; "none": no flash attention flag. */
  flashAttn: "value" | "bare" | "none";
  /**
   * true when the binary has `--fit on|off` (on by default: llama.cpp may then lower settings left
   * unset to fit the memory it sees). The agent turns it off so what runs is what the app's memory plan
   * estimated. Absent on binaries without the flag.
   */
  fit?: true;
}

export interface LlamaServerBinary {
  path: string;
  version: string | null;
  commit: string | null;
  capabilities: LlamaServerCapabilities;
}

export class BinaryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "BinaryError";
  }
}

const SEARCH_DIRS = ["/opt/homebrew/bin", "/usr/local/bin"];

/**
 * Where `npm run llama:build` (scripts/build-llama-server.sh) leaves its
 * builds: `<cache>/llama-server-<commit>/build/bin/llama-server`, with
 * `.synapse-build-complete` once finished. Same folder rule as the script.
 */
export function llamaBuildCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SYNAPSE_CACHE_DIR) return env.SYNAPSE_CACHE_DIR;
  return path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), ".cache"), "synapse");
}

/** The newest finished build in the cache folder, or null. At most 64 folders looked at. */
async function cachedBuild(cacheDir: string): Promise<{ path: string; stat: Stats } | null> {
  const names = (await readdir(cacheDir).catch(() => [] as string[])).filter((n) => n.startsWith("llama-server-")).slice(0, 64);
  let best: { path: string; stat: Stats } | null = null;
  for (const name of names) {
    const dir = path.join(cacheDir, name);
    const done = await stat(path.join(dir, ".synapse-build-complete")).catch(() => null);
    if (!done) continue;
    const bin = path.join(dir, "build", "bin", "llama-server");
    const st = await executableFileStat(bin);
    if (st && (!best || st.mtimeMs > best.stat.mtimeMs)) best = { path: bin, stat: st };
  }
  return best;
}

/** The "not found" message: where the agent looked and how to install llama-server on this platform. */
export function notFoundMessage(platform: string, cacheDir: string): string {
  return `llama-server not found (looked on PATH, in ${SEARCH_DIRS.join(", ")} and in ${cacheDir}): ${llamaInstallHint(platform).text}; or set LLAMA_SERVER_BIN to a llama-server you have`;
}

/** The file's stat when it is an executable regular file, else null (one round of I/O: both checks at once). */
async function executableFileStat(p: string): Promise<Stats | null> {
  const [executable, st] = await Promise.all([access(p, constants.X_OK).then(() => true, () => false), stat(p).catch(() => null)]);
  return executable && st?.isFile() ? st : null;
}

/** Where the binary is, with its stat (for inspectLlamaServer): one round of I/O when configured. */
export function findLlamaServer(configured: string | null, envPath = process.env.PATH ?? "", cacheDir = llamaBuildCacheDir(), platform: string = process.platform): Promise<{ path: string; stat: Stats }> {
  return sharedFind(configured, envPath, cacheDir, platform);
}

// Starts checked together share one lookup (see singleFlight).
const sharedFind = singleFlight((configured: string | null, envPath: string, cacheDir: string, platform: string) => `${configured ?? ""}\0${envPath}\0${cacheDir}\0${platform}`, lookUpLlamaServer);

async function lookUpLlamaServer(configured: string | null, envPath: string, cacheDir: string, platform: string): Promise<{ path: string; stat: Stats }> {
  if (configured) {
    const st = await executableFileStat(configured);
    if (st) return { path: configured, stat: st };
    throw new BinaryError(`LLAMA_SERVER_BIN=${configured} is not an executable file`);
  }
  // Every place is looked at in one round of I/O (with the build cache), not one after another: this runs
  // at every start, on the way of a cold request, and a PATH of 15 folders looked at in turn cost about 3 ms
  // here (strace of an on-demand start). The first place in order that has it wins, as a shell's lookup.
  const candidates = [...new Set([...envPath.split(path.delimiter).filter(Boolean), ...SEARCH_DIRS])].map((dir) => path.join(dir, "llama-server"));
  const [stats, built] = await Promise.all([Promise.all(candidates.map(executableFileStat)), cachedBuild(cacheDir)]);
  const first = stats.findIndex((st) => st !== null);
  if (first !== -1) return { path: candidates[first]!, stat: stats[first]! };
  if (built) return built;
  throw new BinaryError(notFoundMessage(platform, cacheDir));
}

/** The configured binary, else `llama-server` on PATH, else Homebrew's usual places, else `npm run llama:build`'s cache. */
export async function resolveLlamaServerPath(configured: string | null, envPath = process.env.PATH ?? ""): Promise<string> {
  return (await findLlamaServer(configured, envPath)).path;
}

function run(file: string, args: string[]): Promise<{ code: number | null; out: string; error: Error | null }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 20_000, maxBuffer: 4 * 1024 * 1024, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : null) : 0;
      resolve({ code, out: `${stdout ?? ""}\n${stderr ?? ""}`, error: err });
    });
  });
}

/** Reads capabilities out of `--help` text. Exported for unit tests against old and new help texts. */
export function parseCapabilities(help: string): LlamaServerCapabilities {
  const loadFlags = /--load-mode\b/.test(help) ? "load-mode" : "legacy";
  let flashAttn: LlamaServerCapabilities["flashAttn"] = "none";
  if (/--flash-attn\s+\[?on\|off/.test(help) || /--flash-attn\s+FA\b/.test(help)) flashAttn = "value";
  else if (/(^|\s)(-fa|--flash-attn)\b/m.test(help)) flashAttn = "bare";
  const fit = /(^|\s)--fit\s+\[?on\|off/m.test(help);
  return fit ? { loadFlags, flashAttn, fit } : { loadFlags, flashAttn };
}

/** `version: 6123 (80fb11a)` or `version: 0.4.0-dev (build 1, commit 80fb11a)` → version and commit. */
export function parseVersion(text: string): { version: string | null; commit: string | null } {
  const m = /version:\s*(\S+)(?:\s*\(([^)]*)\))?/.exec(text);
  if (!m) return { version: null, commit: null };
  const inParens = m[2] ?? "";
  const commit = /commit\s+([0-9a-f]{6,40})/.exec(inParens)?.[1] ?? /^([0-9a-f]{6,40})$/.exec(inParens.trim())?.[1] ?? null;
  return { version: m[1] ?? null, commit };
}

const cache = new Map<string, Promise<LlamaServerBinary>>();

/** Runs `--version` and `--help` once per binary file (path + mtime + size); `st`: its stat when already known. */
export async function inspectLlamaServer(binPath: string, st?: Stats): Promise<LlamaServerBinary> {
  return inspectWithStat(binPath, st ?? (await stat(binPath)));
}

function inspectWithStat(binPath: string, st: Stats): Promise<LlamaServerBinary> {
  const key = `${binPath}:${st.mtimeMs}:${st.size}`;
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const [v, h] = await Promise.all([run(binPath, ["--version"]), run(binPath, ["--help"])]);
      if (h.code !== 0 && !/--port\b/.test(h.out)) {
        throw new BinaryError(`${binPath} --help failed (exit ${h.code}); is it a llama-server binary?`, { cause: h.error });
      }
      return { path: binPath, ...parseVersion(v.out), capabilities: parseCapabilities(h.out) };
    })();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

export async function describeLlamaServer(configured: string | null): Promise<LlamaServerInfo> {
  try {
    const found = await findLlamaServer(configured);
    const bin = await inspectLlamaServer(found.path, found.stat);
    return { path: bin.path, version: bin.version, commit: bin.commit, loadFlags: bin.capabilities.loadFlags, flashAttn: bin.capabilities.flashAttn, fit: bin.capabilities.fit === true, error: null };
  } catch (err) {
    return { path: configured, version: null, commit: null, loadFlags: null, flashAttn: null, fit: null, error: errorMessage(err) };
  }
}
