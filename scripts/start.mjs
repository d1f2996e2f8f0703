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
// The server is Next's standalone server, loaded into this process (one
// process: signals reach the app directly, which stops its llama-servers on
// SIGTERM). Defaults: 127.0.0.1:3000, database ./data/synapse.db. Relative
// paths in the environment are resolved against the folder you ran this from,
// because the standalone server changes its working folder to its own.
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const unknown = args.filter((a) => a !== "--no-build");
if (unknown.length > 0) {
  process.stderr.write(`start: unknown argument ${unknown[0]}; usage: node scripts/start.mjs [--no-build]\n`);
  process.exit(2);
}
const noBuild = args.includes("--no-build");

function log(msg, fields = {}) {
  process.stderr.write(`${JSON.stringify({ t: new Date().toISOString(), level: "info", component: "start", msg, ...fields })}\n`);
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

let serverJs;
// The gateway's front path (/v1/..., llama-server's own paths), compiled by scripts/build-gateway.mjs.
let gatewayJs;
if (inImage) {
  serverJs = imageServer;
  gatewayJs = path.join(root, "gateway", "front.mjs");
} else {
  gatewayJs = path.join(root, "dist", "gateway", "front.mjs");
  if (!buildIsCurrent()) {
    if (noBuild) {
      process.stderr.write("start: no current build in .next/standalone; run `npm run build` or drop --no-build\n");
      process.exit(1);
    }
    log("building the app (next build); this takes a minute or two the first time");
    if (!existsSync(path.join(root, "src", "generated", "prisma", "client.ts"))) {
      const g = spawnSync(process.execPath, [path.join(root, "scripts", "prisma-generate.mjs")], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
      if (g.status !== 0) {
        process.stderr.write("start: generating the Prisma client failed; see the output above\n");
        process.exit(1);
      }
    }
    const r = spawnSync(process.execPath, [path.join(root, "node_modules", "next", "dist", "bin", "next"), "build"], {
      cwd: root,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
    });
    if (r.status !== 0) {
      process.stderr.write(`start: next build failed (exit ${r.status ?? r.signal}); see the output above\n`);
      process.exit(1);
    }
  }
  if (!noBuild) {
    // A tenth of a second: always current with the sources.
    const g = spawnSync(process.execPath, [path.join(root, "scripts", "build-gateway.mjs")], { cwd: root, stdio: ["ignore", "inherit", "inherit"] });
    if (g.status !== 0) {
      process.stderr.write("start: building the gateway (scripts/build-gateway.mjs) failed; see the output above\n");
      process.exit(1);
    }
  }
  // The standalone folder does not include static assets; they are served from beside it.
  const standaloneNext = path.join(root, ".next", "standalone", ".next");
  cpSync(path.join(root, ".next", "static"), path.join(standaloneNext, "static"), { recursive: true });
  if (existsSync(path.join(root, "public"))) cpSync(path.join(root, "public"), path.join(root, ".next", "standalone", "public"), { recursive: true });
  serverJs = repoServer;
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

const version = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")).version;
log("starting", { version, url: `http://${e.HOSTNAME.includes(":") ? `[${e.HOSTNAME}]` : e.HOSTNAME}:${e.PORT}`, database: e.DATABASE_URL });
if (!existsSync(gatewayJs)) {
  process.stderr.write(`start: the gateway bundle ${gatewayJs} is missing; run \`npm run build\` (or node scripts/build-gateway.mjs)\n`);
  process.exit(1);
}
// Before Next's server exists: the gateway takes its requests in front of Next, in the same server.
const { installGateway } = await import(pathToFileURL(gatewayJs).href);
installGateway();
await import(pathToFileURL(serverJs).href);
