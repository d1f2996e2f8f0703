#!/usr/bin/env node
// Runs the app in production mode: `npm start`, and the Docker image's command.
//
//   node scripts/start.mjs            build if there is no current build, then serve
//   node scripts/start.mjs --no-build serve the existing build (the image: no build tools there)
//
// `npm start` and the image add --max-semi-space-size=2 (V8's default young
// generation costs this server 30-45 MB of RSS it does not need).
//
// The gateway (/v1/... and llama-server's own paths; src/server/gateway/front.ts)
// is installed first: a worker thread of this process takes HOSTNAME:PORT and
// serves the gateway there; Next listens on a loopback port of its own and gets
// every other connection.
//
// Before any build, and before the worker listens or Next's server is loaded,
// two checks end the start with one error line (exit 1) and nothing else run:
// the app's own configuration check (src/server/env.ts, bundled beside the
// gateway by scripts/build-gateway.mjs, which runs first), and whether
// HOSTNAME:PORT can be taken (a port in use is named with its holder). The
// worker's listen after the build is checked the same way. A valid
// configuration reachable beyond loopback gets a line of its own: the Host
// names the app will answer (a warning when SYNAPSE_ALLOWED_HOSTS is unset:
// requests by the machine's LAN address or name would get 403).
//
// The server is Next's standalone server, loaded into this process (one
// process: signals reach the app directly, which stops its llama-servers on
// SIGTERM). Defaults: 127.0.0.1:3000, database ./data/synapse.db. Relative
// paths in the environment are resolved against the folder you ran this from,
// because the standalone server changes its working folder to its own; that
// folder is passed on as SYNAPSE_START_DIR, against which the app resolves
// relative paths in its registry (a host's private key file).
//
// What it prints is true when printed: "building the app" (with the time so
// far every BUILD_PROGRESS_MS) while `next build` runs, "starting the app"
// once the worker listens on HOSTNAME:PORT, and the address to open only once
// GET /api/health there answers 200.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseEnv as parseEnvFile } from "node:util";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== "--no-build");
if (unknown.length > 0) {
  process.stderr.write(`start: unknown argument ${unknown[0]}; usage: node scripts/start.mjs [--no-build]\n`);
  process.exit(2);
}
const noBuild = args.includes("--no-build");
// The environment as given: `next build` gets it (the app's own settings below are for the server).
const givenEnv = { ...process.env };
/** How often a build in progress says how long it has run (ms). */
const BUILD_PROGRESS_MS = 20_000;
/** How long the configuration check (a node process of its own) may take (ms). */
const CONFIG_CHECK_DEADLINE_MS = 30_000;
/** How long the address waits for the app's first answer before a warning instead (ms). */
const ANSWER_DEADLINE_MS = 120_000;

function log(msg, fields = {}, level = "info") {
  process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level, component: "start", msg, ...fields })}\n`);
}

/** Runs `next build` with its output on ours; every BUILD_PROGRESS_MS a line with the time so far. Resolves with its exit. */
function nextBuild() {
  const startedAt = Date.now();
  const child = spawn(process.execPath, [path.join(root, "node_modules", "next", "dist", "bin", "next"), "build"], {
    cwd: root,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...givenEnv, NEXT_TELEMETRY_DISABLED: "1" },
  });
  const progress = setInterval(() => log("still building the app (next build)", { elapsedS: Math.round((Date.now() - startedAt) / 1000) }), BUILD_PROGRESS_MS);
  // A stop (Ctrl-C, SIGTERM to this process) ends the build; this process follows its exit.
  let stoppedBy = null;
  const forward = (signal) => {
    stoppedBy = signal;
    child.kill(signal);
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  return new Promise((resolve) => {
    const done = (code, signal) => {
      clearInterval(progress);
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      // Next handles SIGINT itself and exits 130: a stop, not a failure.
      resolve({ code, signal: signal ?? stoppedBy, seconds: Math.round((Date.now() - startedAt) / 1000) });
    };
    child.once("exit", done);
    child.once("error", (err) => {
      process.stderr.write(`start: cannot run next build: ${err.message}\n`);
      done(1, null);
    });
  });
}

/**
 * Polls GET /api/health on the app's own address until it answers 200
 * (the app's runtime is up and its database answers). Resolves with true
 * then, false at ANSWER_DEADLINE_MS.
 */
async function appAnswers(url) {
  const deadline = Date.now() + ANSWER_DEADLINE_MS;
  for (let wait = 50; Date.now() < deadline; wait = Math.min(wait * 2, 500)) {
    try {
      const res = await fetch(new URL("/api/health", url), { signal: AbortSignal.timeout(Math.max(500, Math.min(5000, deadline - Date.now()))) });
      await res.arrayBuffer();
      if (res.status === 200) return true;
    } catch {
      // not listening yet, or still starting
    }
    await new Promise((r) => setTimeout(r, wait).unref());
  }
  return false;
}

// In the repository the build is at .next/standalone; in the image the standalone folder is the root.
const repoServer = path.join(root, ".next", "standalone", "server.js");
const imageServer = path.join(root, "server.js");
const inImage = existsSync(imageServer) && !existsSync(path.join(root, "next.config.mjs"));

function buildIsCurrent() {
  if (!existsSync(repoServer)) return false;
  const buildId = path.join(root, ".next", "BUILD_ID");
  if (!existsSync(buildId)) return false;
  // A source change after the build means a rebuild (npm start after git pull).
  const builtAt = statSync(buildId).mtimeMs;
  const newest = (dir) => {
    let latest = 0;
    const walk = (d) => {
      for (const entry of readdirSafe(d)) {
        const p = path.join(d, entry.name);
        if (entry.isDirectory()) {
          if (entry.name !== "generated" && entry.name !== "node_modules") walk(p);
        } else latest = Math.max(latest, statSync(p).mtimeMs);
      }
    };
    walk(dir);
    return latest;
  };
  return Math.max(newest(path.join(root, "src")), newest(path.join(root, "prisma")), newest(path.join(root, "host-agent", "src"))) <= builtAt;
}

function readdirSafe(d) {
  try {
    return readdirSync(d, { withFileTypes: true });
  } catch {
    return [];
  }
}

const serverJs = inImage ? imageServer : repoServer;
// The gateway's front path (/v1/..., llama-server's own paths), and config-check.mjs beside it, compiled by scripts/build-gateway.mjs.
const gatewayJs = inImage ? path.join(root, "gateway", "front.mjs") : path.join(root, "dist", "gateway", "front.mjs");
const needsBuild = !inImage && !buildIsCurrent();
if (needsBuild && noBuild) {
  process.stderr.write("start: no current build in .next/standalone; run `npm run build` or drop --no-build\n");
  process.exit(1);
}

/**
 * The variables of the .env files Next's server will load beside server.js
 * (the first file that sets one wins; the environment wins over all of them),
 * so that the configuration checked below is the one the app runs with.
 * Before a build those are the copies the build makes of the root's .env and
 * .env.production. Read only (`next build` reads the root's files itself).
 */
function envFileValues() {
  const dir = needsBuild ? root : path.dirname(serverJs);
  const names = needsBuild ? [".env.production", ".env"] : [".env.production.local", ".env.local", ".env.production", ".env"];
  const values = {};
  for (const name of names) {
    let text;
    try {
      text = readFileSync(path.join(dir, name), "utf8");
    } catch {
      continue;
    }
    for (const [k, v] of Object.entries(parseEnvFile(text))) values[k] ??= v;
  }
  return values;
}

// Paths in the environment are relative to where the user ran the command.
const cwd = process.cwd();
const absolute = (p) => (path.isAbsolute(p) ? p : path.resolve(cwd, p));
const e = process.env;
const dbUrl = e.DATABASE_URL || "file:./data/synapse.db";
if (dbUrl.startsWith("file:") || !dbUrl.includes("://")) {
  const file = dbUrl.startsWith("file:") ? dbUrl.slice(5) : dbUrl;
  e.DATABASE_URL = `file:${absolute(file.replace(/^~(?=\/)/, e.HOME ?? "~"))}`;
}
e.SYNAPSE_SSH_DIR = absolute(e.SYNAPSE_SSH_DIR || "host-api/.ssh");
// And so are relative paths in the registry (a host's private key file): src/server/services/fleet/links.ts registryPath.
e.SYNAPSE_START_DIR = absolute(e.SYNAPSE_START_DIR || ".");
if (e.SYNAPSE_STATE_DIR) e.SYNAPSE_STATE_DIR = absolute(e.SYNAPSE_STATE_DIR);
if (e.SYNAPSE_MODEL_ROOTS) e.SYNAPSE_MODEL_ROOTS = e.SYNAPSE_MODEL_ROOTS.split(":").filter(Boolean).map(absolute).join(":");
if (e.LLAMA_SERVER_BIN && e.LLAMA_SERVER_BIN.includes("/")) e.LLAMA_SERVER_BIN = absolute(e.LLAMA_SERVER_BIN);
e.HOSTNAME ||= "127.0.0.1";
e.PORT ||= "3000";
e.NODE_ENV = "production";
e.NEXT_TELEMETRY_DISABLED = "1";
// The app stops its servers on SIGTERM before exiting (src/server/boot.ts); Next must not exit first.
e.NEXT_MANUAL_SIG_HANDLE = "true";
e.SYNAPSE_MIGRATIONS_DIR ||= path.join(path.dirname(serverJs), "prisma", "migrations");

if (!inImage && !noBuild) {
  // A tenth of a second, and independent of next build: first, so that the checks below can run before a build of minutes.
  const g = spawnSync(process.execPath, [path.join(root, "scripts", "build-gateway.mjs")], { cwd: root, env: givenEnv, stdio: ["ignore", "inherit", "inherit"] });
  if (g.status !== 0) {
    process.stderr.write("start: building the gateway (scripts/build-gateway.mjs) failed; see the output above\n");
    process.exit(1);
  }
}
const configCheckJs = path.join(path.dirname(gatewayJs), "config-check.mjs");
for (const bundle of [gatewayJs, configCheckJs]) {
  if (!existsSync(bundle)) {
    process.stderr.write(`start: the gateway bundle ${bundle} is missing; run \`npm run build\` (or node scripts/build-gateway.mjs)\n`);
    process.exit(1);
  }
}

// The app's own configuration check (src/server/env.ts, which the app runs again as it boots; config-check.ts
// says why a process of its own): a bad configuration is one error here, before anything listens or builds,
// not a "Ready" line and then a refusal.
const configCheck = spawnSync(process.execPath, [configCheckJs], {
  env: { ...envFileValues(), ...e },
  stdio: ["ignore", "pipe", "pipe"],
  encoding: "utf8",
  timeout: CONFIG_CHECK_DEADLINE_MS,
});
if (configCheck.status !== 0) {
  const said = (configCheck.stderr ?? "").trimEnd();
  // 2: an invalid configuration (config-check.ts); anything else: the check could not run.
  if (configCheck.status === 2) process.stderr.write(`start: ${said}\n`);
  else process.stderr.write(`start: the configuration check (${configCheckJs}) failed (${configCheck.error?.message ?? configCheck.signal ?? `exit ${configCheck.status}`})${said ? `:\n${said}` : ""}\n`);
  process.exit(1);
}
// What the check says of a valid configuration, one JSON object a line (config-check.ts): e.g. beyond loopback,
// which Host names the app answers, and a warning when SYNAPSE_ALLOWED_HOSTS is unset (a LAN address gets 403).
for (const line of (configCheck.stdout ?? "").split("\n")) {
  if (!line.trim()) continue;
  try {
    const { level, msg, ...fields } = JSON.parse(line);
    log(String(msg), fields, level === "warn" ? "warn" : "info");
  } catch {
    log(line);
  }
}

const gateway = await import(pathToFileURL(gatewayJs).href);
const version = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).version;
const listen = { host: e.HOSTNAME, port: Number(e.PORT) };
// Before a build: a port in use (a second npm start while the app runs) ends the start here, with its holder named,
// instead of a build that rewrites .next/ under the running app.
// A port in use: the free port suggested instead is none that a model on this machine is registered on (read from the
// database only then, read-only; nothing when there is none yet).
const failure = { registeredPorts: () => gateway.localModelPorts(e.DATABASE_URL).ports };
const taken = await gateway.listenProblem(listen, failure);
if (taken) {
  process.stderr.write(`start: ${taken.message}\n`);
  process.exit(1);
}

if (needsBuild) {
  log("building the app (next build): a minute or two the first time, more on a busy machine; the address to open follows once the app answers");
  if (!existsSync(path.join(root, "src", "generated", "prisma", "client.ts"))) {
    const g = spawnSync(process.execPath, [path.join(root, "scripts", "prisma-generate.mjs")], { cwd: root, env: givenEnv, stdio: ["ignore", "inherit", "inherit"] });
    if (g.status !== 0) {
      process.stderr.write("start: generating the Prisma client failed; see the output above\n");
      process.exit(1);
    }
  }
  const r = await nextBuild();
  if (r.signal) {
    process.stderr.write(`start: next build was stopped (${r.signal}); the app was not started\n`);
    process.exit(1);
  }
  if (r.code !== 0) {
    process.stderr.write(`start: next build failed (exit ${r.code}); see the output above\n`);
    process.exit(1);
  }
  log("built the app", { seconds: r.seconds });
}
if (!inImage) {
  // The standalone folder does not include static assets; they are served from beside it.
  const standaloneNext = path.join(root, ".next", "standalone", ".next");
  cpSync(path.join(root, ".next", "static"), path.join(standaloneNext, "static"), { recursive: true });
  if (existsSync(path.join(root, "public"))) cpSync(path.join(root, "public"), path.join(root, ".next", "standalone", "public"), { recursive: true });
}

const bracketed = (host) => (host.includes(":") ? `[${host}]` : host);
// A wildcard address is reached on loopback from here (and on this machine's other addresses from elsewhere).
const localHost = e.HOSTNAME === "0.0.0.0" ? "127.0.0.1" : e.HOSTNAME === "::" || e.HOSTNAME === "[::]" ? "::1" : e.HOSTNAME;
const url = `http://${bracketed(localHost)}:${e.PORT}`;
// Before Next's server exists: the gateway's worker takes HOSTNAME:PORT (or says why it cannot, and nothing runs):
// the port can have been taken during the build.
try {
  await gateway.installGateway(listen, failure);
} catch (err) {
  process.stderr.write(`start: ${err instanceof gateway.ListenError ? err.message : `the gateway could not start: ${err instanceof Error ? err.message : String(err)}`}\n`);
  process.exit(1);
}
log("starting the app", { version, listen: `${bracketed(e.HOSTNAME)}:${e.PORT}`, database: e.DATABASE_URL });
await import(pathToFileURL(serverJs).href);
void appAnswers(url).then((answers) => {
  if (answers) log(`the app answers: open ${url}`, { url, ...(e.HOSTNAME !== localHost ? { listen: `${bracketed(e.HOSTNAME)}:${e.PORT}` } : {}) });
  else log(`the app has not answered ${url}/api/health within ${ANSWER_DEADLINE_MS / 1000} s; see the log above`, { url }, "warn");
});
