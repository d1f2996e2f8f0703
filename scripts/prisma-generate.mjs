#!/usr/bin/env node
// Generates the Prisma client (TypeScript, WebAssembly query compiler: no
// native engine is needed at run time). The Prisma CLI insists on locating a
// schema engine binary before any command, and downloads one when it has none;
// `generate` never uses it, so point it at an existing file to stay offline.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const env = {
  ...process.env,
  PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
  PRISMA_HIDE_UPDATE_MESSAGE: "1",
  CHECKPOINT_DISABLE: "1",
};
const cli = path.join(root, "node_modules", "prisma", "build", "index.js");
const r = spawnSync(process.execPath, [cli, "generate"], { cwd: root, env, stdio: "inherit", timeout: 300_000 });
if (r.error) {
  console.error(`prisma generate could not run: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
