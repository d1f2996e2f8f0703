/**
 * npm run model:tiny [-- <folder>]
 *
 * Writes the project's tiny test model (a llama-architecture GGUF of about
 * 0.45 MiB with seeded random weights, the one the tests use) as
 * `<folder>/synapse-tiny.gguf`, so a fresh install has a model that starts
 * in well under a second without downloading anything. Its answers are
 * noise: it checks the setup, it is not a model to talk to. Its context is
 * SETUP_CONTEXT tokens (the tests' default is 256), so a long stream, a queue
 * of long requests or an idle clock during a stream can be tried with it.
 *
 * The folder defaults to the app's first model folder: the first entry of
 * SYNAPSE_MODEL_ROOTS, else `~/models` (as the local host's agent resolves
 * it, src/server/services/fleet/links.ts). The file is written whole under a
 * hidden temporary name, then hard-linked to its name, which fails when any
 * entry has that name (even one appearing meanwhile, or a dangling link;
 * on a file system without hard links it is renamed after a last check):
 * a scan never sees half a file, and an existing `synapse-tiny.gguf` is left
 * alone. Exit codes: 0 written or already there, 1 the folder cannot be
 * created or written (the error says which and why).
 *
 * Its last line is the next step: open the app when it answers, else start it
 * first; with SYNAPSE_QUICKSTART=1 (set by scripts/quickstart.sh, which runs
 * `npm start` next) it says that quickstart starts the app now.
 */
import { link, lstat, mkdir, rename, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { writeTinyModel } from "../host-agent/src/gguf/tiny-model.ts";

const FILE = "synapse-tiny.gguf";
/** The context (tokens) written into the model's header: llama-server caps a slot's context to it. */
const SETUP_CONTEXT = 4096;

function expandHome(p: string): string {
  return p === "~" ? os.homedir() : p.startsWith("~/") ? path.join(os.homedir(), p.slice(2)) : p;
}

/** The folders the app's local agent scans, as this shell's SYNAPSE_MODEL_ROOTS says (default ~/models), absolute. */
function modelRoots(): string[] {
  const given = (process.env.SYNAPSE_MODEL_ROOTS ?? "").split(":").map((s) => s.trim()).filter(Boolean);
  return (given.length > 0 ? given : ["~/models"]).map((r) => path.resolve(expandHome(r)));
}

function defaultFolder(): string {
  return modelRoots()[0]!;
}

/**
 * Where the app is, for the "Next:" line: SYNAPSE_URL when set (the CLI's variable), else loopback on PORT
 * (the app's variable, default 3000), so a user who runs the app with PORT=3100 is not sent to :3000.
 */
function appUrl(): string {
  const url = process.env.SYNAPSE_URL?.trim().replace(/\/+$/, "");
  if (url) return url;
  const port = process.env.PORT?.trim();
  return `http://127.0.0.1:${port && /^\d{1,5}$/.test(port) ? port : "3000"}`;
}

/** Whether the app answers GET /api/health at `url` within a second: only then is "open it" a step to take now. */
async function appAnswers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2).filter((a) => a !== "--");
  if (args.length > 1 || args.some((a) => a.startsWith("-"))) {
    console.error("usage: npm run model:tiny [-- <folder>]   (default: the first SYNAPSE_MODEL_ROOTS entry, else ~/models)");
    return 1;
  }
  const folder = args[0] ? path.resolve(expandHome(args[0])) : defaultFolder();
  const file = path.join(folder, FILE);
  try {
    await mkdir(folder, { recursive: true });
  } catch (err) {
    console.error(`cannot create the model folder ${folder}: ${(err as Error).message}`);
    return 1;
  }
  const already = async () => {
    const st = await stat(file).catch(() => null);
    console.log(`${file} is already there (${st ? `${st.size} bytes` : "a link to a missing file"}); left as it is`);
    return 0;
  };
  if (await lstat(file).catch(() => null)) return already();
  const tmp = path.join(folder, `.${FILE}.${process.pid}.tmp`);
  try {
    await writeTinyModel(tmp, { contextLength: SETUP_CONTEXT });
    await link(tmp, file).catch(async (err: NodeJS.ErrnoException) => {
      // A file system without hard links (exFAT, some network shares): rename, after one more look.
      if (err.code !== "EPERM" && err.code !== "ENOTSUP" && err.code !== "EOPNOTSUPP") throw err;
      if (await lstat(file).catch(() => null)) throw Object.assign(new Error(`${file} exists`), { code: "EEXIST" });
      await rename(tmp, file);
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return already();
    console.error(`cannot write ${file}: ${(err as Error).message}`);
    return 1;
  } finally {
    await rm(tmp, { force: true });
  }
  const size = (await stat(file)).size;
  console.log(`wrote ${file} (${size} bytes): the tiny test model, random weights, answers are noise.`);
  const roots = modelRoots();
  // A folder the app does not scan: Scan would find nothing, so the next step says how to make it scan this one.
  if (!roots.some((r) => folder === r || folder.startsWith(`${r}${path.sep}`)))
    console.log(`Note: the app scans ${roots.join(":")} (SYNAPSE_MODEL_ROOTS), not ${folder}: start it with SYNAPSE_MODEL_ROOTS=${folder} (or add the folder to that list), or it will not find this model.`);
  const url = appUrl();
  // Run by scripts/quickstart.sh, which starts the app itself right after: say so, not "start the app".
  if (process.env.SYNAPSE_QUICKSTART === "1")
    console.log(`Next: quickstart starts the app now (npm start); once it prints its address, open ${url}/discover, press Scan for models, enable it, then START ALL ENABLED.`);
  // Not "open" an address where nothing answers yet (the quick start runs this before the app's first build).
  else if (await appAnswers(url)) console.log(`Next: open ${url}/discover, press Scan for models, enable it, then START ALL ENABLED.`);
  else console.log(`Next: start the app (npm start; it prints its address once it answers), then open ${url}/discover, press Scan for models, enable it, then START ALL ENABLED.`);
  return 0;
}

process.exitCode = await main();
