/**
 * npm run registry:import -- <files or folders> [--host <name>]
 *
 * Imports the seed project's model_registry.json and runtime_settings.json
 * into the registry named by DATABASE_URL (migrating it first), into the
 * default host (or --host). A folder is searched for both files, also under
 * backend/data/ and data/. Exit codes: 0 imported, 2 imported but some
 * entries were invalid, 1 nothing imported (bad arguments, unreadable files,
 * a file that is not the seed's shape, bad configuration).
 */
import { mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { openDatabase, type Db } from "~/server/db/client";
import { databaseFile, env, EnvError } from "~/server/env";
import { ServiceError } from "~/server/services/errors";
import { ensureDefaultHost, importSeed, type ImportReport } from "~/server/services/registry";
import { stripBom } from "~/server/services/registry/json-text";

const USAGE = `usage: npm run registry:import -- <model_registry.json | runtime_settings.json | folder>... [--host <name>]

  A folder is searched for model_registry.json and runtime_settings.json,
  also under backend/data/ and data/ (the seed project's layout).
  --host <name>  import into this registered host instead of the default one.`;

const REGISTRY = "model_registry.json";
const SETTINGS = "runtime_settings.json";
const FOLDERS = [".", "backend/data", "data"];

class UsageError extends Error {}

interface Found {
  registry?: string;
  runtimeSettings?: string;
}

export function parseArgs(argv: string[]): { paths: string[]; host?: string; help: boolean } {
  const paths: string[] = [];
  let host: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-h" || a === "--help") help = true;
    else if (a === "--host") {
      host = argv[++i];
      if (!host || host.startsWith("-")) throw new UsageError("--host needs a host name");
    } else if (a.startsWith("--host=")) host = a.slice("--host=".length);
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}`);
    else paths.push(a);
  }
  return { paths, host, help };
}

function kindOf(file: string): keyof Found {
  const base = path.basename(file).toLowerCase();
  if (base === REGISTRY) return "registry";
  if (base === SETTINGS) return "runtimeSettings";
  // Renamed copies: tell them apart by content.
  let value: unknown;
  try {
    value = JSON.parse(stripBom(readFileSync(file, "utf8")));
  } catch (err) {
    throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code ? `cannot be read (${(err as Error).message})` : `is not valid JSON (${(err as Error).message})`}`);
  }
  if (value && typeof value === "object" && "models" in value) return "registry";
  if (value && typeof value === "object" && ("n_gpu_layers" in value || "ctx_size" in value)) return "runtimeSettings";
  throw new UsageError(`${file}: neither a model_registry.json (no "models") nor a runtime_settings.json (no "n_gpu_layers"/"ctx_size")`);
}

export function findFiles(paths: string[]): Found {
  const found: Found = {};
  const put = (kind: keyof Found, file: string) => {
    if (found[kind] && path.resolve(found[kind]!) !== path.resolve(file)) throw new UsageError(`two ${kind === "registry" ? REGISTRY : SETTINGS} files given: ${found[kind]} and ${file}`);
    found[kind] = file;
  };
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch (err) {
      throw new UsageError(`${p}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (st.isDirectory()) {
      const before = { ...found };
      for (const [kind, name] of [["registry", REGISTRY], ["runtimeSettings", SETTINGS]] as const) {
        const hit = FOLDERS.map((f) => path.join(p, f, name)).find((f) => statSync(f, { throwIfNoEntry: false })?.isFile());
        if (hit) put(kind, hit);
      }
      if (found.registry === before.registry && found.runtimeSettings === before.runtimeSettings) {
        throw new UsageError(`${p}: no ${REGISTRY} or ${SETTINGS} in it (looked in ${FOLDERS.join(", ")})`);
      }
    } else put(kindOf(p), p);
  }
  return found;
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`${file}: cannot be read (${(err as Error).message})`);
  }
}

async function hostIdFor(db: Db, name: string | undefined): Promise<{ id: string; name: string }> {
  const config = env();
  if (name === undefined) return ensureDefaultHost(db, config);
  const host = await db.host.findUnique({ where: { name }, select: { id: true, name: true } });
  if (!host) {
    const names = (await db.host.findMany({ select: { name: true } })).map((h) => h.name);
    throw new UsageError(`no host named ${name}; registered: ${names.length ? names.join(", ") : "none"}`);
  }
  return host;
}

async function printReport(db: Db, report: ImportReport, files: Found, out: (line: string) => void): Promise<void> {
  const names = [...report.created, ...report.updated, ...report.unchanged];
  const rows = new Map((await db.model.findMany({ where: { name: { in: names } }, select: { name: true, port: true, enabled: true } })).map((m) => [m.name, m]));
  const line = (status: string, name: string, detail = "") => out(`  ${status.padEnd(10)} ${name}${detail ? `  ${detail}` : ""}`);
  const describe = (name: string) => {
    const m = rows.get(name);
    return m ? `port ${m.port}, ${m.enabled ? "enabled" : "disabled"}` : "";
  };
  if (files.registry) {
    out(`models from ${files.registry}:`);
    for (const n of report.created) line("created", n, describe(n));
    for (const n of report.updated) line("updated", n, describe(n));
    for (const n of report.unchanged) line("unchanged", n, describe(n));
    for (const i of report.invalid) line("invalid", i.modelId, i.issues.map((x) => `${x.path || "(entry)"}: ${x.message}`).join("; "));
  }
  if (files.runtimeSettings) {
    out(`settings from ${files.runtimeSettings}: ${report.settings}`);
    for (const i of report.settingsIssues) out(`  invalid    ${i.path || "(file)"}: ${i.message}`);
  }
  out(`${report.created.length} created, ${report.updated.length} updated, ${report.unchanged.length} unchanged, ${report.invalid.length} invalid; settings ${report.settings}`);
}

export async function main(argv: string[], out = (l: string) => process.stdout.write(`${l}\n`), err = (l: string) => process.stderr.write(`${l}\n`)): Promise<number> {
  let db: Db | undefined;
  try {
    const args = parseArgs(argv);
    if (args.help) {
      out(USAGE);
      return 0;
    }
    if (args.paths.length === 0) throw new UsageError("give model_registry.json, runtime_settings.json or a folder holding them");
    const files = findFiles(args.paths);
    const texts = { registry: files.registry && readText(files.registry), runtimeSettings: files.runtimeSettings && readText(files.runtimeSettings) };

    const config = env();
    const dbFile = databaseFile(config.DATABASE_URL);
    mkdirSync(path.dirname(dbFile), { recursive: true });
    db = openDatabase(dbFile);
    const host = await hostIdFor(db, args.host);
    out(`importing into host ${host.name} (${dbFile})`);
    const report = await importSeed(
      db,
      { ...(texts.registry !== undefined ? { registry: texts.registry } : {}), ...(texts.runtimeSettings !== undefined ? { runtimeSettings: texts.runtimeSettings } : {}) },
      { hostId: host.id, appPort: config.PORT },
    );
    await printReport(db, report, files, out);
    return report.invalid.length > 0 || report.settings === "invalid" ? 2 : 0;
  } catch (e) {
    if (e instanceof UsageError) {
      err(`registry:import: ${e.message}`);
      err(USAGE);
    } else if (e instanceof EnvError) {
      err(`registry:import: ${e.message}`);
    } else if (e instanceof ServiceError) {
      const which = (p: string) => (p.startsWith("registry") ? REGISTRY : p.startsWith("runtimeSettings") ? SETTINGS : "");
      err(`registry:import: nothing imported: ${e.message}`);
      for (const i of e.issues ?? []) if (which(i.path)) err(`  ${which(i.path)}: ${i.message}`);
    } else {
      err(`registry:import: failed: ${(e as Error)?.stack ?? String(e)}`);
    }
    return 1;
  } finally {
    await db?.$disconnect();
  }
}

const invokedDirectly = process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`registry:import: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
