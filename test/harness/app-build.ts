/**
 * The production build the e2e tests run, made the way the Docker image is
 * made: the working tree is copied (like `COPY . .` in the Dockerfile's build
 * stage), `next build` runs in the copy, and the runtime files are assembled
 * into an image-shaped folder (IMAGE_LAYOUT; the Dockerfile's runtime stage
 * copies the same parts). Each app instance then runs START_COMMAND in that
 * folder, which is the image's CMD.
 *
 * Why a copy and not the repository's own `.next`: several people (and their
 * test runs) share one working tree. A build in place would replace the
 * `.next` another run is serving from, and two builds at once corrupt each
 * other. The copy makes one test run's build its own. node_modules is
 * hard-linked into the copy (Turbopack refuses a symlinked node_modules that
 * resolves outside the project root), so the copy costs a second or two.
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { cp, link, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, copyFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../..");

/** The command the Docker image runs (its CMD) and every production-mode test runs, from the image root. */
// --max-semi-space-size=2: V8's default young generation (16 MB semi-spaces) costs this server 30-45 MB
// of RSS for nothing (its requests are small); the flag must be given at start, not set later.
export const START_COMMAND = ["node", "--max-semi-space-size=2", "scripts/start.mjs", "--no-build"] as const;

/**
 * What the runtime image holds, relative to its root (`/app`), and where each
 * part comes from in a built tree. test/docker-contract.test.ts checks that
 * the Dockerfile's runtime stage copies exactly these.
 */
export const IMAGE_LAYOUT: readonly { from: string; to: string; why: string }[] = [
  { from: ".next/standalone", to: ".", why: "server.js, the traced node_modules (better-sqlite3's native build included), package.json" },
  { from: ".next/static", to: ".next/static", why: "client chunks and CSS; the standalone output leaves them out" },
  { from: "prisma/migrations", to: "prisma/migrations", why: "applied by the app at start" },
  { from: "scripts/start.mjs", to: "scripts/start.mjs", why: "the start command (CMD)" },
  { from: "dist/gateway", to: "gateway", why: "the gateway's front path (scripts/build-gateway.mjs), loaded by start.mjs before Next's server" },
];

/** Top-level entries of the working tree that a build never needs (the .dockerignore list says the same). */
export const BUILD_CONTEXT_EXCLUDES = [".git", "node_modules", ".next", "data", "test-results", "host-api", "coverage", ".env", ".env.local"];

export interface AppBuildResult {
  /** The image-shaped folder: run START_COMMAND here. */
  imageDir: string;
  /** Next's BUILD_ID of this build. */
  buildId: string;
  buildMs: number;
  /** The full `next build` output. */
  logPath: string;
}

function isExcluded(name: string): boolean {
  return BUILD_CONTEXT_EXCLUDES.includes(name) || name.endsWith(".tsbuildinfo");
}

/** Copies a tree, hard-linking files (copying across devices), keeping symlinks as they are. */
async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  const entries = await readdir(from, { withFileTypes: true });
  await Promise.all(
    entries.map(async (e) => {
      const src = path.join(from, e.name);
      const dst = path.join(to, e.name);
      if (e.isSymbolicLink()) await symlink(await readlink(src), dst);
      else if (e.isDirectory()) await linkTree(src, dst);
      else if (e.isFile()) {
        try {
          await link(src, dst);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
          await copyFile(src, dst);
        }
      }
    }),
  );
}

/** The build context: the working tree minus what the build never reads, plus node_modules hard-linked. */
async function makeBuildContext(repo: string, dir: string): Promise<void> {
  for (const e of await readdir(repo, { withFileTypes: true })) {
    if (isExcluded(e.name)) continue;
    // Sources are copied (not linked): an edit in the working tree during the build must not reach it.
    await cp(path.join(repo, e.name), path.join(dir, e.name), { recursive: true, verbatimSymlinks: true, filter: (src) => !src.includes(`${path.sep}node_modules`) });
  }
  await linkTree(path.join(repo, "node_modules"), path.join(dir, "node_modules"));
}

function runLogged(cmd: string, args: string[], cwd: string, log: NodeJS.WritableStream, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, NODE_ENV: "production", NEXT_TELEMETRY_DISABLED: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${path.basename(args[0] ?? cmd)} ${args.slice(1).join(" ")} ended with ${signal ?? `exit ${code}`}${signal === "SIGKILL" ? ` (deadline ${timeoutMs} ms)` : ""}`));
    });
  });
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.split("\n").slice(-lines).join("\n");
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Assembles the runtime image's files (IMAGE_LAYOUT) from a built tree into `imageDir`. */
export async function assembleImage(builtTree: string, imageDir: string): Promise<void> {
  await mkdir(imageDir, { recursive: true });
  for (const part of IMAGE_LAYOUT) {
    const src = path.join(builtTree, part.from);
    if (!(await exists(src))) throw new Error(`the build has no ${part.from} (needed for ${part.why})`);
    await cp(src, path.join(imageDir, part.to), { recursive: true, verbatimSymlinks: true, force: true });
  }
}

/**
 * A dynamic filesystem access in server code makes Turbopack trace the whole
 * project into the standalone output. Besides bloating the image, that puts
 * next.config.mjs beside server.js, and scripts/start.mjs then takes the image
 * for a repository and refuses to start (`no current build`). Say so plainly,
 * with the file Next's warning names.
 */
async function checkNotWholeProject(imageDir: string, logPath: string): Promise<void> {
  if (!(await exists(path.join(imageDir, "next.config.mjs")))) return;
  const log = await readFile(logPath, "utf8").catch(() => "");
  const at = log.indexOf("Dynamic filesystem access causes tracing of the whole project");
  const where = at === -1 ? "" : (log.slice(Math.max(0, log.lastIndexOf("\n", log.lastIndexOf("\n", at) - 1) + 1), at).trim().split("\n")[0] ?? "");
  throw new Error(
    `the standalone output holds the whole project (next.config.mjs among it): Turbopack traced everything because of a dynamic filesystem access${where ? ` at ${where}` : ""} ` +
      `(see "Dynamic filesystem access" in ${logPath}; fix: a static path, or fs.readFile(/*turbopackIgnore: true*/ p)). ` +
      "The Docker image would not start either: scripts/start.mjs sees next.config.mjs and asks for a build.",
  );
}

/**
 * Builds the app from the working tree into an image-shaped folder under the
 * OS temp dir. `next build` output goes to `logPath` (and its tail into the
 * error when it fails).
 */
export async function buildAppImage(options: {
  repo?: string;
  logPath: string;
  timeoutMs?: number;
  /** Files added to the build context before building (path relative to its root → content); bench/gateway.ts adds a Next route to compare with. */
  extraFiles?: Record<string, string>;
}): Promise<AppBuildResult> {
  const repo = options.repo ?? REPO_ROOT;
  const started = performance.now();
  const work = await mkdtemp(path.join(os.tmpdir(), "synapse-app-build-"));
  const context = path.join(work, "context");
  const imageDir = path.join(work, "image");
  await mkdir(path.dirname(options.logPath), { recursive: true });
  const log = createWriteStream(options.logPath);
  try {
    await makeBuildContext(repo, context);
    for (const [rel, content] of Object.entries(options.extraFiles ?? {})) {
      await mkdir(path.dirname(path.join(context, rel)), { recursive: true });
      await writeFile(path.join(context, rel), content);
    }
    const next = path.join(context, "node_modules", "next", "dist", "bin", "next");
    // `npm run build` = prisma generate + next build; the generated client comes with the copy when present.
    if (!(await exists(path.join(context, "src", "generated", "prisma", "client.ts")))) {
      await runLogged(process.execPath, [path.join(context, "scripts", "prisma-generate.mjs")], context, log, 300_000);
    }
    await runLogged(process.execPath, [next, "build"], context, log, options.timeoutMs ?? 15 * 60_000);
    // The rest of `npm run build`: the gateway's front path, compiled.
    await runLogged(process.execPath, [path.join(context, "scripts", "build-gateway.mjs")], context, log, 120_000);
    await assembleImage(context, imageDir);
    await checkNotWholeProject(imageDir, options.logPath);
    const buildId = (await readFile(path.join(context, ".next", "BUILD_ID"), "utf8")).trim();
    await rm(context, { recursive: true, force: true });
    return { imageDir, buildId, buildMs: Math.round(performance.now() - started), logPath: options.logPath };
  } catch (err) {
    await new Promise<void>((r) => log.end(r));
    await rm(work, { recursive: true, force: true });
    throw new Error(`building the app failed: ${(err as Error).message}\n--- last lines of ${options.logPath} ---\n${await tail(options.logPath, 40)}`, { cause: err });
  } finally {
    if (!log.writableEnded) await new Promise<void>((r) => log.end(r));
  }
}

/** Removes a folder made by buildAppImage (the image folder's parent is the build's work folder). */
export async function removeAppImage(imageDir: string): Promise<void> {
  const work = path.dirname(imageDir);
  if (path.basename(work).startsWith("synapse-app-build-")) await rm(work, { recursive: true, force: true });
}

/** True when `dir` is an image-shaped app folder (server.js at its root, the start script, no next.config). */
export async function isAppImage(dir: string): Promise<boolean> {
  try {
    return (await stat(path.join(dir, "server.js"))).isFile() && (await stat(path.join(dir, "scripts", "start.mjs"))).isFile() && !(await exists(path.join(dir, "next.config.mjs")));
  } catch {
    return false;
  }
}
