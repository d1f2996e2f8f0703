#!/usr/bin/env node
// Compiles the gateway's front path (src/server/gateway/front.ts) into one
// ES module, dist/gateway/front.mjs, which scripts/start.mjs loads before
// Next's server (the image ships it as /app/gateway/front.mjs), and the
// gateway's worker thread (src/server/gateway/worker.ts) into
// dist/gateway/worker.mjs beside it, which front.mjs starts. Part of
// `npm run build`; about a tenth of a second. Beside them, the app's
// configuration check as a program (src/server/gateway/config-check.ts),
// dist/gateway/config-check.mjs, which start.mjs runs before it builds or
// listens.
//
// The bundle holds only the gateway's own code and Node's built-ins: it
// reaches the database, the fleet and the logger through the runtime that
// Next's instrumentation puts on globalThis (type imports only).
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const GATEWAY_BUNDLE = path.join("dist", "gateway", "front.mjs");

export const WORKER_BUNDLE = path.join("dist", "gateway", "worker.mjs");

export const CONFIG_CHECK_BUNDLE = path.join("dist", "gateway", "config-check.mjs");

const result = await build({
  entryPoints: [
    { in: path.join(root, "src", "server", "gateway", "front.ts"), out: "front" },
    { in: path.join(root, "src", "server", "gateway", "worker.ts"), out: "worker" },
    { in: path.join(root, "src", "server", "gateway", "config-check.ts"), out: "config-check" },
  ],
  outdir: path.dirname(path.join(root, GATEWAY_BUNDLE)),
  outExtension: { ".js": ".mjs" },
  bundle: true,
  // The worker's own ssh connections (worker-tunnels.ts) load ssh2 from node_modules as the app does (a native
  // crypto binding, which a bundle cannot hold); the image has it beside server.js (/app/node_modules).
  external: ["ssh2"],
  platform: "node",
  format: "esm",
  target: "node20",
  tsconfig: path.join(root, "tsconfig.json"),
  sourcemap: "linked",
  logLevel: "warning",
  metafile: true,
});
// Nothing but our gateway files and node: built-ins may be in it (a stray value import of the
// fleet or Prisma would load a second copy of them beside Next's), and the host agent's port
// lookup (stateless: it names who holds the app's port when the worker cannot listen), the
// one-line failure text (error-text.ts with the pure helpers it reads a log tail with), the
// dashboard's state words (display-state.ts, with the list of server states it reads), and which
// port a model's running server has (listening-port.ts).
const ALLOWED = new Set([
  "src/server/http/guard.ts",
  "host-agent/src/supervisor/port.ts",
  "host-agent/src/supervisor/health.ts",
  "host-agent/src/supervisor/process-table.ts",
  "host-agent/src/shared/error-text.ts",
  "host-agent/src/shared/telling-log-line.ts",
  "host-agent/src/shared/run-header.ts",
  // /v1/models names a model's state as the dashboard and the CLI do (idle, queued), by their one rule.
  "src/shared/display-state.ts",
  // 503 model_failed adds no advice after an error that ends with its own (the Playground's note reads it too).
  "src/shared/failed-advice.ts",
  "src/server/services/fleet/listening-port.ts",
  // Where DATABASE_URL's file is, as the app reads it (registered-ports.ts reads the registry when the port is taken).
  "src/server/db/database-file.ts",
  "src/server/db/read-registry.ts",
  "host-agent/src/shared/server-states.ts",
]);
// The worker's own ssh connections (worker-tunnels.ts): the ssh link (host-agent/src/link/ssh.ts) with what it
// reads (its config's schema, the protocol's types and errors: zod), and ssh2 left outside the bundle.
const WORKER_ALLOWED = (f) =>
  /^host-agent\/src\/link\/(ssh|ssh-config|ssh-tunnel|host-key|types|wire)\.ts$/.test(f) ||
  ["host-agent/src/protocol.ts", "host-agent/src/extra-flags.ts", "host-agent/src/shared/model-shape.ts"].includes(f) ||
  /(^|\/)node_modules\/zod\//.test(f);
// The configuration check holds the app's env module, how it shows a bad value (env-value.ts), zod (zod's
// files wherever node_modules/zod resolves to), and what start-up says of the Host allowlist (the guard's
// own list: guard.ts, host-allowlist-note.ts).
const CONFIG_CHECK_FILES = new Set(["src/server/gateway/config-check.ts", "src/server/env.ts", "host-agent/src/shared/env-value.ts", "host-agent/src/shared/agent-tuning-env.ts", "src/server/http/guard.ts", "src/server/http/host-allowlist-note.ts"]);
const CONFIG_CHECK_ALLOWED = (f) => CONFIG_CHECK_FILES.has(f) || /(^|\/)node_modules\/zod\//.test(f);
for (const [out, { inputs: used }] of Object.entries(result.metafile.outputs)) {
  if (!out.endsWith(".mjs")) continue;
  const isCheck = path.basename(out) === path.basename(CONFIG_CHECK_BUNDLE);
  const isWorker = path.basename(out) === path.basename(WORKER_BUNDLE);
  const inputs = Object.keys(used).filter((f) => (isCheck ? !CONFIG_CHECK_ALLOWED(f) : !f.startsWith("src/server/gateway/") && !ALLOWED.has(f) && !(isWorker && WORKER_ALLOWED(f))));
  if (inputs.length > 0) {
    const only = isCheck ? `${[...CONFIG_CHECK_FILES].join(", ")} and zod` : `src/server/gateway/, ${[...ALLOWED].join(", ")}`;
    process.stderr.write(`build-gateway: ${out} must hold only ${only}, but it includes: ${inputs.join(", ")}\n`);
    process.exit(1);
  }
}
// front.mjs starts the worker from the file beside it (`new URL("./worker.mjs", import.meta.url)`).
for (const out of [GATEWAY_BUNDLE, WORKER_BUNDLE, CONFIG_CHECK_BUNDLE]) {
  if (!existsSync(path.join(root, out))) {
    process.stderr.write(`build-gateway: ${out} was not written\n`);
    process.exit(1);
  }
}
